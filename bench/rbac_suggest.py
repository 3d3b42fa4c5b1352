"""`authsvc rbac suggest` on large audit logs: events per second and peak memory, 100k vs 1M events.

    .venv/bin/python bench/rbac_suggest.py [--events 1000000] [--share 0.05] [--dir DIR] [--gzip]

Writes two logs (events/10 and events lines) of Metadata-level audit.k8s.io/v1 events as
kube-apiserver writes them (Go's compact JSON, ~800 bytes a line): 40 users, nodes and service
accounts across 50 namespaces, with `alice` making `share` of the requests. Then, each in a
forked child, suggest() + render() for

  user alice            the fast path: a line without "alice" is not parsed;
  group system:authenticated   every line is the subject's: every line parsed (the worst case).

Prints wall and CPU events/s (CPU is the figure to read on a shared machine) and the growth of
the child's peak RSS over its RSS at start: it must not grow with the log.
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from measure import in_child

from authsvc.rbac.objects import render
from authsvc.rbac.subjects import Subject
from authsvc.rbac.suggest import SuggestOptions, suggest

RESOURCES = [  # (API group, resource, namespaced)
    ("", "pods", True),
    ("", "configmaps", True),
    ("", "secrets", True),
    ("", "services", True),
    ("", "events", True),
    ("", "nodes", False),
    ("apps", "deployments", True),
    ("coordination.k8s.io", "leases", True),
]
VERBS = ["get", "get", "get", "list", "watch", "update", "patch", "create"]
USERS = [f"user-{i}" for i in range(30)] + [f"system:node:node-{i}" for i in range(5)]
USERS += [f"system:serviceaccount:team-{i}:app" for i in range(5)]
NAMESPACES = [f"team-{i}" for i in range(50)]
# Go's encoder order for audit.k8s.io/v1 Event (TypeMeta first), as --audit-log-path writes it.
TEMPLATE = (
    '{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"{id}","stage":"{stage}",'
    '"requestURI":"{uri}","verb":"{verb}","user":{{"username":"{user}","groups":["team","system:authenticated"]}},'
    '"sourceIPs":["10.0.3.{ip}"],"userAgent":"kubectl/v1.32.0 (linux/amd64) kubernetes/70d3cc9",'
    '"objectRef":{{{ref}}},"responseStatus":{{"metadata":{{}},"code":200}},'
    '"requestReceivedTimestamp":"2024-05-01T10:{m:02d}:{s:02d}.{us:06d}Z","stageTimestamp":"2024-05-01T10:{m:02d}:{s:02d}.{us:06d}Z",'
    '"annotations":{{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":'
    '"RBAC: allowed by ClusterRoleBinding \\"team\\" of ClusterRole \\"edit\\" to Group \\"team\\""}}}}\n'
)


def event_line(rnd: random.Random, number: int, user: str) -> str:
    group, resource, namespaced = rnd.choice(RESOURCES)
    verb = rnd.choice(VERBS)
    namespace = rnd.choice(NAMESPACES) if namespaced else ""
    name = f"{resource[:-1]}-{rnd.randrange(1000)}" if verb not in ("list", "watch", "create") else ""
    base = f"/apis/{group}/v1" if group else "/api/v1"
    uri = base + (f"/namespaces/{namespace}" if namespace else "") + f"/{resource}" + (f"/{name}" if name else "")
    ref = f'"resource":"{resource}"' + (f',"namespace":"{namespace}"' if namespace else "")
    ref += (f',"name":"{name}"' if name else "") + (f',"apiGroup":"{group}"' if group else "") + ',"apiVersion":"v1"'
    stage = "ResponseStarted" if verb == "watch" and number % 2 else "ResponseComplete"
    m, s, us = divmod(number // 1000, 60)[0] % 60, (number // 1000) % 60, number % 1_000_000
    return TEMPLATE.format(
        id=f"{number:08x}-6f1e-4b3a-9d5c-{number:012x}", stage=stage, uri=uri, verb=verb, user=user,
        ip=number % 250, ref=ref, m=m, s=s, us=us,
    )  # fmt: skip


def write_log(path: Path, count: int, share: float, compress: bool) -> Path:
    rnd = random.Random(42)  # the same log every run
    opener: Callable[..., Any] = gzip.open if compress else open
    with opener(path, "wt", encoding="utf-8") as out:
        for number in range(count):
            user = "alice" if rnd.random() < share else rnd.choice(USERS)
            out.write(event_line(rnd, number, user))
    return path


def run_suggest(log: Path, subject: Subject) -> dict[str, int]:
    suggestion = suggest([str(log)], SuggestOptions(subject))
    suggestion.check()
    text = render(suggestion.objects, "yaml")
    return {"requests": suggestion.tally.requests, "parsed": suggestion.read.parsed, "yaml_bytes": len(text)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--share", type=float, default=0.05, help="alice's share of the events")
    parser.add_argument("--dir", type=Path, default=None, help="where to write the logs (default: a temp dir)")
    parser.add_argument("--gzip", action="store_true", help="gzip the logs")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rbac-bench-", dir=args.dir))
    try:
        run(work, args.events, args.share, args.gzip)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, events: int, share: float, compress: bool) -> None:
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    subjects = [
        ("user alice (fast path)", Subject.user("alice")),
        ("group system:authenticated (all parsed)", Subject.group("system:authenticated")),
    ]
    columns = ("events/s wall", "events/s CPU", "peak RSS +MiB")
    print(f"{'events':>10}  {'log MiB':>8}  {'subject':<40} " + " ".join(f"{c:>13}" for c in columns))
    for count in (events // 10, events):
        started = time.perf_counter()
        log = write_log(work / f"audit-{count}.log{'.gz' if compress else ''}", count, share, compress)
        size = log.stat().st_size / 2**20
        print(f"# wrote {log.name} in {time.perf_counter() - started:.1f} s")
        for label, subject in subjects:
            seconds, cpu, growth, result = in_child(lambda log=log, subject=subject: run_suggest(log, subject))
            print(
                f"{count:>10,}  {size:>8.0f}  {label:<40} {count / seconds:>13,.0f} {count / cpu:>13,.0f} "
                f"{growth:>13.1f}   ({result['requests']:,} requests, {result['parsed']:,} lines parsed)"
            )
        log.unlink()


if __name__ == "__main__":
    main()
