"""Tokens signed and verified per second by TokenService, next to bare PyJWT with the same key.

For each algorithm (RS256, ES256), on a fresh home (SQLite inventory):

- sign:   TokenService.issue_service_account_token (claims, jti, kid header, record in the
          inventory in batches) vs jwt.encode(claims, key, algorithm) with the key loaded once;
- verify: TokenService.verify (kid lookup, signature, iss/aud/exp/nbf/iat, denylist,
          identity shape) vs jwt.decode(token, public_key, algorithms, audience, issuer).

The ratio service/bare is the price of what TokenService adds (target: >= 0.7).
Rates are per CPU-second of the benchmark process (time.process_time, all its threads), so
that a busy shared machine does not decide the ratio; with one thread on an idle machine
that is the wall-clock rate. Each figure is the best of `--rounds` runs of `--seconds`
each, TokenService and bare PyJWT interleaved (one calling thread, one process).
Run time: about 2 x 2 x rounds x seconds, plus key generation (~20 s by default).

    .venv/bin/python bench/tokens.py [--seconds 0.8] [--rounds 6] [--algorithms RS256,ES256]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt

from authsvc.db import migrate_database_step
from authsvc.home import Home
from authsvc.settings import settings_from_mapping
from authsvc.setup import initialize_home, write_config_step
from authsvc.tokens import signing_key_step
from pki.keys import load_private_key_pem

ISSUER = "https://kubernetes.default.svc.cluster.local"


def fresh_home(root: Path, algorithm: str) -> Home:
    settings = settings_from_mapping({"tokens": {"algorithm": algorithm}})
    steps = [write_config_step, migrate_database_step, signing_key_step]
    return initialize_home(root / algorithm, settings, environ={}, steps=steps).home


def run_for(operation: Callable[[], Any], seconds: float) -> float:
    """Calls per CPU-second of this process (every thread: the ledger's flushes count) during
    `seconds` of wall time, in blocks of 50 calls to keep the clocks out of the loop."""
    count, wall, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - wall < seconds:
        for _ in range(50):
            operation()
        count += 50
    return count / (time.process_time() - cpu)


def compare(ours: Callable[[], Any], bare: Callable[[], Any], seconds: float, rounds: int) -> tuple[float, float]:
    """Best rate of each over `rounds` interleaved runs: both see the same machine load."""
    ours(), bare()  # warm-up: caches, key load, first inventory write
    best_ours = best_bare = 0.0
    for _ in range(rounds):
        best_ours = max(best_ours, run_for(ours, seconds))
        best_bare = max(best_bare, run_for(bare, seconds))
    return best_ours, best_bare


def measure(root: Path, algorithm: str, seconds: float, rounds: int) -> list[tuple[str, float, float]]:
    home = fresh_home(root, algorithm)
    service = home.token_service
    key = load_private_key_pem(home.key_path("sa").read_bytes())
    public, kid = key.public_key(), service.key_records()[0].kid
    issued = service.issue_service_account_token("bench", "runner", uid="u-1")
    claims, token = issued.claims, issued.token

    def service_sign() -> None:
        service.issue_service_account_token("bench", "runner", uid="u-1")

    def bare_sign() -> None:
        jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid})

    def service_verify() -> None:
        service.verify(token)

    def bare_verify() -> None:
        jwt.decode(token, public, algorithms=[algorithm], audience=ISSUER, issuer=ISSUER)

    rows = []
    for name, ours, bare in (("sign", service_sign, bare_sign), ("verify", service_verify, bare_verify)):
        rows.append((name, *compare(ours, bare, seconds, rounds)))
    service.flush()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=0.8, help="length of one timed run")
    parser.add_argument("--rounds", type=int, default=6, help="timed runs per figure (the best is kept)")
    parser.add_argument("--algorithms", default="RS256,ES256")
    args = parser.parse_args()
    print(f"{'alg':<7}{'op':<8}{'TokenService/s':>16}{'bare PyJWT/s':>15}{'ratio':>8}   (per CPU-second)")
    with tempfile.TemporaryDirectory() as tmp:
        for algorithm in args.algorithms.split(","):
            for op, ours, bare in measure(Path(tmp), algorithm, args.seconds, args.rounds):
                print(f"{algorithm:<7}{op:<8}{ours:>16,.0f}{bare:>15,.0f}{ours / bare:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
