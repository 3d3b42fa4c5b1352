"""Tokens signed and verified per second by TokenService, next to bare PyJWT with the same key.

For each algorithm (RS256, ES256), on a fresh home (SQLite inventory):

- sign:   TokenService.issue_service_account_token (the ban gate, claims, jti, kid header,
          record in the inventory in batches, the audit line through the batched log a server
          process writes with) vs jwt.encode(claims, key, algorithm) with the key loaded once;
- verify: TokenService.verify (kid lookup, signature, iss/aud/exp/nbf/iat, denylist,
          identity shape) vs jwt.decode(token, public_key, algorithms, audience, issuer).

The ratio service/bare is the price of what TokenService adds (target: >= 0.7).
Rates are per CPU-second, so that a busy shared machine does not decide the ratio; with one
thread on an idle machine that is the wall-clock rate. TokenService and bare PyJWT alternate in
blocks of 50 calls for `--seconds` of wall time per figure, and each rate is its calls over its
summed CPU time: both sides see the same machine, block by block. TokenService's CPU includes
the ledger's timer thread (batched inventory writes), also when it runs during a bare block.
(Until issue 3 each figure was the best of 6 separate 0.8 s runs per side, and a write the
timer made during a bare run counted for bare PyJWT; on a shared machine a ratio moved by up to
0.15 between two runs of the same code, RS256 signing included, where TokenService adds ~2% to
a signature.) Run time: about 4 x seconds, plus key generation.

    .venv/bin/python bench/tokens.py [--seconds 8] [--algorithms RS256,ES256]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt

from authsvc.audit.log import AuditLog
from authsvc.db.schema import migrate_database_step
from authsvc.home.opened import Home
from authsvc.init.signing_key import signing_key_step
from authsvc.init.steps import initialize_home, write_config_step
from authsvc.settings import settings_from_mapping
from pki.keys import load_private_key_pem

ISSUER = "https://kubernetes.default.svc.cluster.local"


def fresh_home(root: Path, algorithm: str) -> Home:
    """A home whose issuance lines go through a batched audit log, as in a server process
    (authsvc/runtime.py), where tokens are issued many at a time (/login, OIDC)."""
    settings = settings_from_mapping({"tokens": {"algorithm": algorithm}})
    steps = [write_config_step, migrate_database_step, signing_key_step]
    home = initialize_home(root / algorithm, settings, environ={}, steps=steps).home
    home.stores.attach_audit(AuditLog.open(home.settings.audit, home.root))
    return home


BLOCK = 50  # calls between two clock readings: keeps the clocks out of the loop


def cpu_times_of_block(operation: Callable[[], Any]) -> tuple[float, float]:
    """(CPU seconds of the calling thread, of the other threads) during BLOCK calls."""
    process, thread = time.process_time(), time.thread_time()
    for _ in range(BLOCK):
        operation()
    own = time.thread_time() - thread
    return own, time.process_time() - process - own


def compare(ours: Callable[[], Any], bare: Callable[[], Any], seconds: float) -> tuple[float, float]:
    """Calls per CPU-second of each, alternating blocks for `seconds` of wall time. The only other
    thread is the ledger's timer, writing TokenService's records: its CPU is TokenService's, also
    when it runs during a block of bare PyJWT."""
    ours(), bare()  # warm-up: caches, key load, first inventory write
    ours_cpu = bare_cpu = 0.0
    blocks, deadline = 0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        ours_cpu += sum(cpu_times_of_block(ours))
        bare_own, ledger = cpu_times_of_block(bare)
        bare_cpu += bare_own
        ours_cpu += ledger
        blocks += 1
    return blocks * BLOCK / ours_cpu, blocks * BLOCK / bare_cpu


def measure(root: Path, algorithm: str, seconds: float) -> list[tuple[str, float, float]]:
    home = fresh_home(root, algorithm)
    service = home.stores.token_service
    key = load_private_key_pem(home.layout.key_path("sa").read_bytes())
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
        rows.append((name, *compare(ours, bare, seconds)))
    service.flush()
    home.stores.audit.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0, help="wall time per figure (both sides)")
    parser.add_argument("--algorithms", default="RS256,ES256")
    args = parser.parse_args()
    print(f"{'alg':<7}{'op':<8}{'TokenService/s':>16}{'bare PyJWT/s':>15}{'ratio':>8}   (per CPU-second, interleaved)")
    with tempfile.TemporaryDirectory() as tmp:
        for algorithm in args.algorithms.split(","):
            for op, ours, bare in measure(Path(tmp), algorithm, args.seconds):
                print(f"{algorithm:<7}{op:<8}{ours:>16,.0f}{bare:>15,.0f}{ours / bare:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
