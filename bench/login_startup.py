"""Wall time of `authsvc login` answering from its cache, as a whole process, next to the bare
interpreter and kubectl's own start, measured in the same run (interleaved rounds).

kubectl runs the exec plugin before every command, so this is added to each `kubectl get`.
Targets: <= 3x `python -c pass` and <= 1.5x `kubectl version --client`.

    .venv/bin/python bench/login_startup.py [--rounds 40]

The cache holds a valid token, and a valid certificate with its key (`--credential
certificate`, exec-cert kubeconfigs), for the login URL, so no network is involved: this is
the path `authsvc/cli/__init__.py` hands to authsvc.login.client before click is imported.
For comparison it also times the same command through click (`authsvc --debug login ...`,
which the fast path leaves to click).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from measure import wall_ms

VENV_BIN = Path(sys.executable).parent
LOGIN_URL = "https://authsvc.example.org:8443/login"


def write_cache(cache_home: Path) -> None:
    folder = cache_home / "authsvc"
    folder.mkdir(parents=True, mode=0o700)
    entry = {"token": "x" * 900, "expirationTimestamp": "2099-01-01T00:00:00Z", "expires": 4070908800.0}
    # A P-256 certificate and key take about 1.2 KiB of PEM together.
    certificate = {"certificate": "c" * 700, "key": "k" * 240, "expirationTimestamp": "2099-01-01T00:00:00Z",
                   "expires": 4070908800.0}  # fmt: skip
    server = {"last_user": "alice", "tokens": {"alice": entry}, "certificates": {"alice": certificate}}
    document = {"version": 1, "servers": {LOGIN_URL: server}}
    (folder / "tokens.json").write_text(json.dumps(document))
    (folder / "tokens.json").chmod(0o600)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    kubectl = shutil.which("kubectl") or "/usr/bin/kubectl"
    cache_home = Path(tempfile.mkdtemp(prefix="bench-login-"))
    write_cache(cache_home)
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home), "HOME": str(cache_home)}
    login = [str(VENV_BIN / "authsvc"), "login", "--server", LOGIN_URL, "--username", "alice"]
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "kubectl version --client": [kubectl, "version", "--client"],
        "authsvc login (cached)": login,
        "authsvc login --credential certificate (cached)": [*login, "--credential", "certificate"],
        "authsvc --debug login (through click)": [login[0], "--debug", *login[1:]],
    }
    timings: dict[str, list[float]] = {name: [] for name in commands}
    for command in commands.values():  # warm the page cache and .pyc files
        wall_ms(command, env)
    for _ in range(args.rounds):
        for name, command in commands.items():
            timings[name].append(wall_ms(command, env))
    shutil.rmtree(cache_home, ignore_errors=True)

    median = {name: statistics.median(values) for name, values in timings.items()}
    print(f"{'':50} {'median ms':>10} {'p90 ms':>8}")
    for name, values in timings.items():
        print(f"{name:50} {median[name]:10.1f} {statistics.quantiles(values, n=10)[8]:8.1f}")
    for name in ("authsvc login (cached)", "authsvc login --credential certificate (cached)"):
        cached = median[name]
        print(
            f"{name} / python -c pass: {cached / median['python -c pass']:.2f} (target <= 3); "
            f"/ kubectl version --client: {cached / median['kubectl version --client']:.2f} (target <= 1.5)"
        )


if __name__ == "__main__":
    main()
