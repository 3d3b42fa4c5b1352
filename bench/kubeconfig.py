"""Kubeconfigs issued per second in cert mode (`authsvc issue USER -g dev -o FILE`).

Three figures, each on a fresh home with the default settings (EC P-256 keys, SQLite inventory):

- service: KubeconfigIssuer.issue + write 0600 (key generation, policy, signing, two inventory
  rows, YAML, atomic write with fsync): what one issuing process sustains;
- cli in-process: the same through `authsvc issue` (click parsing, home opening, schema check);
- cli process: `authsvc issue` as a new process each time, the way an operator or script runs it.

    .venv/bin/python bench/kubeconfig.py [--count 500] [--process-count 20]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from authsvc.cli import main as cli_main
from authsvc.home.opened import Home
from authsvc.init.steps import initialize_home
from authsvc.kubeconfig.documents import write_kubeconfig
from authsvc.kubeconfig.issuer import IssueRequest, KubeconfigIssuer
from authsvc.settings import Settings


def fresh_home(root: Path) -> Home:
    return initialize_home(root / "home", Settings(), environ={}).home


@dataclass(frozen=True)
class Rate:
    wall: float  # kubeconfigs per second of elapsed time
    cpu: float  # kubeconfigs per CPU-second (this process and its children): steadier on a busy machine

    def __str__(self) -> str:
        return f"{self.wall:8.1f} kubeconfigs/s  ({self.cpu:6.1f} per CPU-second)"


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def rate(count: int, one: Callable[[int], None]) -> Rate:
    one(-1)  # warm-up: imports, engine, CA load
    start, cpu = time.perf_counter(), _cpu_seconds()
    for i in range(count):
        one(i)
    return Rate(count / (time.perf_counter() - start), count / (_cpu_seconds() - cpu))


def service_rate(root: Path, count: int) -> Rate:
    home = fresh_home(root)
    service = KubeconfigIssuer(home)
    out = root / "out"

    def one(i: int) -> None:
        issued = service.issue(IssueRequest(user=f"user{i + 1}", groups=("dev",), requester="bench"))
        write_kubeconfig(out / f"user{i + 1}.kubeconfig", issued.config)

    return rate(count, one)


def cli_rate(root: Path, count: int) -> Rate:
    home = fresh_home(root)

    def one(i: int) -> None:
        args = [f"--home={home.root}", "issue", f"user{i + 1}", "-g", "dev", "-o", str(root / f"u{i + 1}.kubeconfig")]
        try:
            cli_main(args)
        except SystemExit as e:
            if e.code:
                raise RuntimeError(f"authsvc issue failed with status {e.code}") from None

    return rate(count, one)


def process_rate(root: Path, count: int) -> Rate:
    home = fresh_home(root)
    authsvc = Path(sys.executable).parent / "authsvc"

    def one(i: int) -> None:
        out = root / f"p{i + 1}.kubeconfig"
        subprocess.run(
            [str(authsvc), f"--home={home.root}", "issue", f"user{i + 1}", "-g", "dev", "-o", str(out)],
            check=True,
            capture_output=True,
        )

    return rate(count, one)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--process-count", type=int, default=20)
    args = parser.parse_args()

    print(f"load average before: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)")
    with tempfile.TemporaryDirectory() as tmp:
        print(f"service         {service_rate(Path(tmp) / 's', args.count)}  n={args.count}")
        with contextlib.redirect_stdout(io.StringIO()):
            in_process = cli_rate(Path(tmp) / "c", args.count)
        print(f"cli in-process  {in_process}  n={args.count}")
        processes = process_rate(Path(tmp) / "p", args.process_count)
        print(f"cli process     {processes}  n={args.process_count}")


if __name__ == "__main__":
    main()
