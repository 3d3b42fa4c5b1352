"""Renewing 10,000 certificates with `authsvc rotate`, next to issuing the same 10,000, in one run.

    .venv/bin/python bench/rotate.py [--count 10000] [--dir DIR] [--chunk 256]

P-256 leaves under one P-256 CA, in one home (DIR: default a temporary directory beside the
current one, i.e. on the disk; /dev/shm takes the disk's fsync out of the figures):

  bare     issuance without files or database: CertificateIssuer.create + PEM (key generation,
           policy, build, sign). CPU only: the yardstick.
  issue    the same, as a bulk caller writes it into the home: inventory rows (one transaction per
           chunk, auto_renew) and key + certificate files (atomic: an fsync per file, one directory
           fsync per chunk). These are the certificates renewed next.
  renew    `authsvc rotate` renewing all of them: due rows streamed from the inventory, each file
           read, re-signed with its own key, the old file copied to backups/, the new one written
           atomically, inventory rows added and superseded (one transaction per chunk), an audit
           line per certificate. Then the same at count/10 (on a copy), to show the memory is flat.

Each phase runs in a forked child: its time, and its peak memory as the growth of the child's
peak RSS over its RSS at the start (getrusage), so phases cannot hide each other's peaks.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import shutil
import tempfile
from pathlib import Path

from disk import describe
from measure import in_child

from authsvc.db.schema import migrate_database_step
from authsvc.home.opened import open_home
from authsvc.init.steps import cluster_ca_step, initialize_home, write_config_step
from authsvc.rotation.executor import rotate
from authsvc.settings import settings_from_mapping
from pki.clock import FixedClock
from pki.issuance import CertificateIssuer
from pki.keys import KeyType
from pki.policy import SigningPolicy
from pki.profiles import CLIENT
from pki.store import CERT_MODE, KEY_MODE, PendingFile, atomic_write_many

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
SETTINGS = {
    "cluster": {"encryption_algorithm": "ECDSA-P256"},
    "audit": {"path": "audit.log"},
    "rotation": {"keys": {"rotate_every": None}},
}
SHORT, LONG = 300 * DAY, 365 * DAY  # count/10 certificates live 300 days, the rest 365


def make_home(root: Path) -> Path:
    ctx = initialize_home(
        root, settings_from_mapping(SETTINGS), clock=FixedClock(T0), environ={},
        steps=[write_config_step, migrate_database_step, cluster_ca_step],
    )  # fmt: skip
    ctx.home.stores.engine.dispose()  # nothing open across fork()
    return root


def bare(root: Path, count: int) -> int:
    home = open_home(root, clock=FixedClock(T0), environ={})
    issuer = CertificateIssuer(home.stores.load_ca("ca"), None, SigningPolicy(), home.clock)
    for n in range(count):
        issued = issuer.create(f"leaf-{n:05d}", profile=CLIENT, ttl=LONG, key_type=KeyType.EC_P256)
        issued.cert_pem, issued.key_pem()
    return count


def issue(root: Path, count: int, chunk: int) -> int:
    home = open_home(root, clock=FixedClock(T0), environ={})
    issuer = CertificateIssuer(home.stores.load_ca("ca"), None, SigningPolicy(), home.clock)
    for start in range(0, count, chunk):
        batch = []
        for n in range(start, min(start + chunk, count)):
            name = f"bench/leaf-{n:05d}"
            ttl = SHORT if n < count // 10 else LONG
            batch.append(issuer.create(f"leaf-{n:05d}", profile=CLIENT, ttl=ttl, key_type=KeyType.EC_P256, name=name))
        home.stores.inventory.add([dataclasses.replace(i.record, auto_renew=True) for i in batch])
        files = []
        for i in batch:
            assert i.record.name is not None
            files += [
                PendingFile(home.layout.key_path(i.record.name), i.key_pem(), KEY_MODE),
                PendingFile(home.layout.cert_path(i.record.name), i.cert_pem, CERT_MODE),
            ]
        atomic_write_many(files)
    return count


def renew(root: Path, day: int, chunk: int) -> dict[str, int]:
    home = open_home(root, clock=FixedClock(T0 + day * DAY), environ={})
    report = rotate(home, chunk=chunk)
    return {"done": report.counts["done"], "failed": report.counts["failed"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--dir", type=Path, default=Path.cwd(), help="where the temporary home goes")
    parser.add_argument("--chunk", type=int, default=256, help="renewals per transaction and directory sync")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="authsvc-bench-rotate-", dir=args.dir))
    try:
        run(work, args.count, args.chunk)
    finally:
        shutil.rmtree(work)


def run(work: Path, count: int, chunk: int) -> None:
    home = make_home(work / "home")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{count:,} P-256 leaves, one P-256 CA; {os.cpu_count()} CPUs, load average {load}; chunks of {chunk}")
    print(f"home on {describe(work)}")
    rows: list[tuple[str, float, float, float, int]] = []
    seconds, cpu, growth, _ = in_child(lambda: bare(home, count))
    rows.append(("bare issuance (no files, no database)", seconds, cpu, growth, count))
    seconds, cpu, growth, _ = in_child(lambda: issue(home, count, chunk))
    rows.append(("issuance into the home (files + inventory)", seconds, cpu, growth, count))
    small = work / "small"
    shutil.copytree(home, small)
    seconds, cpu, growth, done = in_child(lambda: renew(small, 280, chunk))  # only the 300-day tenth is due
    assert done == {"done": count // 10, "failed": 0}, done
    small_row = (f"renewal by rotate, {count // 10:,} of them", seconds, cpu, growth, count // 10)
    shutil.rmtree(small)
    seconds, cpu, growth, done = in_child(lambda: renew(home, 340, chunk))
    assert done == {"done": count, "failed": 0}, done
    rows += [("renewal by rotate (authsvc rotate)", seconds, cpu, growth, count), small_row]
    print(f"{'':44}{'wall s':>8}{'CPU s':>8}{'CPU/cert':>10}{'peak RSS growth':>18}")
    for label, secs, cpu_s, mib, n in rows:
        print(f"{label:44}{secs:8.2f}{cpu_s:8.2f}{cpu_s / n * 1000:8.2f}ms{mib:15.1f} MiB")
    (bare_w, bare_c), (issue_w, issue_c), (renew_w, renew_c) = ((r[1], r[2]) for r in rows[:3])
    print(
        f"renewal / issuance into the home: {renew_c / issue_c:.2f}x CPU, {renew_w / issue_w:.2f}x wall; "
        f"renewal / bare issuance: {renew_c / bare_c:.2f}x CPU, {renew_w / bare_w:.2f}x wall"
    )
    print(f"memory: {rows[2][3]:.1f} MiB for {count:,} renewals, {rows[3][3]:.1f} MiB for {count // 10:,}")


if __name__ == "__main__":
    main()
