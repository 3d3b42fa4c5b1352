"""Wall time of common `authsvc` commands as whole processes, next to `python -c pass` and the
import floor of the libraries they need, measured in the same run (interleaved rounds, medians).

Target (issue 20): `issue`, `certs create`, `token create` and `certs check-expiration` within
0.4 s wall on this machine. Each of the four reads authsvc.yaml (pydantic) and the inventory
(SQLAlchemy), and three of them sign (cryptography): the "floor" rows import exactly those
libraries and nothing of authsvc, so the gap between a command and its floor is authsvc's own.
The floors run with a command's garbage-collector settings (authsvc/cli/__init__.py), and every
process starts as an installed authsvc does, with its bytecode cached (bench/measure.py).

Every table is a SQLAlchemy Core `Table` (issue 20), so the last floor is the tables as the
commands load them; the row after it adds SQLAlchemy's ORM, which no command loads any more: what
that saves, measured in the same run (docs/operations.md, section 6).

    .venv/bin/python bench/cli_startup.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from itertools import count
from pathlib import Path

from measure import installed_env, wall_ms

from authsvc.cli import COMMAND_GC_THRESHOLDS

VENV_BIN = Path(sys.executable).parent
LIBRARIES = "click, cryptography.x509, yaml"
FLOORS = {
    "floor: click + cryptography.x509 + yaml": LIBRARIES,
    "floor: + pydantic": f"{LIBRARIES}, pydantic",
    "floor: + authsvc.settings (the models built)": f"{LIBRARIES}, authsvc.settings",
    "floor: + SQLAlchemy Core (engine, SQLite)": f"{LIBRARIES}, authsvc.settings, sqlalchemy.dialects.sqlite",
    "floor: + the tables (Core)": f"{LIBRARIES}, authsvc.settings, sqlalchemy.dialects.sqlite, "
    "authsvc.db.tables, pki.inventory",
    "not loaded: + SQLAlchemy ORM": f"{LIBRARIES}, authsvc.settings, sqlalchemy.dialects.sqlite, "
    "authsvc.db.tables, pki.inventory, sqlalchemy.orm",
}


def floor_code(modules: str) -> str:
    """`import modules` in a process whose garbage collector is set as a command's is."""
    return f"import gc; gc.set_threshold(*{COMMAND_GC_THRESHOLDS}); import {modules}; gc.freeze()"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    home = folder / "home"
    env = {**installed_env(folder / "pycache"), "AUTHSVC_HOME": str(home)}
    authsvc = str(VENV_BIN / "authsvc")
    subprocess.run([authsvc, "init"], env=env, capture_output=True, check=True)
    serial = count()
    commands: dict[str, object] = {
        "python -c pass": lambda: [sys.executable, "-c", "pass"],
        **{name: (lambda m=modules: [sys.executable, "-c", floor_code(m)]) for name, modules in FLOORS.items()},
        "authsvc --help": lambda: [authsvc, "--help"],
        "authsvc certs check-expiration": lambda: [authsvc, "certs", "check-expiration"],
        "authsvc certs create": lambda: [authsvc, "certs", "create", f"user{next(serial)}", "-g", "dev"],
        "authsvc issue": lambda: [authsvc, "issue", f"person{next(serial)}", "-o", str(home / f"k{next(serial)}")],
        "authsvc token create": lambda: [authsvc, "token", "create", "-n", "ci", "--serviceaccount", "b", "--uid", "u"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for make in commands.values():  # warm the page cache and write the .pyc files
        wall_ms(make(), env)  # type: ignore[operator]
    for _ in range(args.rounds):
        for name, make in commands.items():
            times[name].append(wall_ms(make(), env))  # type: ignore[operator]
    base = statistics.median(times["python -c pass"])
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{args.rounds} rounds, interleaved; medians (wall); bytecode cached; load average {load}")
    print(f"{'command':48} {'ms':>8} {'x python -c pass':>18}")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"{name:48} {median:8.0f} {median / base:18.1f}")


if __name__ == "__main__":
    main()
