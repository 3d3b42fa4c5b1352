"""CPU time of one cached TokenReview inside the process (no HTTP, no TLS): what the webhook's
hot path costs by itself, precise where bench/webhook.py's rates move with the machine's load.

A static token's answer sits in the result cache; each review is the cache hit, the revocation
check (issue 18: the banned users and revoked credentials, in memory), the audit line (batched)
and the metrics, with the system clock (`--fixed-clock`: one instant, every line in the same
millisecond).

    .venv/bin/python bench/review_cpu.py [--rounds 15] [--reviews 20000] [--fixed-clock]

To compare two versions, run it from each checkout with PYTHONPATH pointing at the checkout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from authsvc.audit.log import AuditLog
from authsvc.runtime import build_runtime
from authsvc.webhook.tokenreview import TokenReviewRequest
from pki.clock import FixedClock, system_clock
from tests.webhook.support import small_home

TOKEN = "bench-static-token-0123456789abcdef"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--reviews", type=int, default=20_000)
    parser.add_argument("--fixed-clock", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-review-") as tmp:
        root = Path(tmp) / "home"
        clock = FixedClock(dt.datetime.now(dt.UTC)) if args.fixed_clock else system_clock
        home = small_home(root, clock, authn={"chain": ["tokenfile"], "tokenfile": {"path": "tokens.csv"}})
        (root / "tokens.csv").write_text(f"{TOKEN},bench,uid-1,dev\n")
        fd = os.open(root / "audit.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        audit = AuditLog(fd, owned=True, flush_seconds=60)
        reviewer = build_runtime(home, audit=audit).reviewer
        request = TokenReviewRequest("authentication.k8s.io/v1", TOKEN)
        reviewer.review(request, "127.0.0.1")  # into the cache
        per_review = []
        for _ in range(args.rounds):
            started = time.process_time()
            for _ in range(args.reviews):
                reviewer.review(request, "127.0.0.1")
            per_review.append((time.process_time() - started) / args.reviews * 1e6)
            audit.flush()
        audit.close()
    clock_name = "fixed clock" if args.fixed_clock else "system clock"
    print(f"cached TokenReview, CPU per review ({clock_name}, {args.rounds} rounds of {args.reviews}): "
          f"min {min(per_review):.2f} us, median {statistics.median(per_review):.2f} us")  # fmt: skip
    os._exit(0)  # the audit log's flush thread is stopped already; skip interpreter teardown


if __name__ == "__main__":
    main()
