"""What counting one TokenReview costs the hot path, and what sharing the counts costs off it.

Per TokenReview the webhook counts its decision and backend, a cache hit or miss and its
latency. Measured here, in one process, one calling thread, interleaved rounds:

- authsvc's ServerMetrics.request: plain counters under one lock (authsvc/metrics/server.py);
- the same three updates with prometheus-client's Counter/Histogram objects, in memory;
- the same with prometheus-client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR: one mmap'ed
  file per process and metric type, summed at scrape time), in a child process because that
  mode is chosen when prometheus_client is first imported, for the whole process;

then the costs that authsvc's sharing adds away from requests (authsvc/metrics/share.py): one
snapshot published (counts copied, a JSON file written and renamed, as the publishing thread
does at most once a second), and one /metrics answer summing `--processes` snapshot files.

    .venv/bin/python bench/metrics.py [--updates 200000] [--rounds 5] [--processes 4]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# What the hot path sees: a few decisions and backends, latencies around the cached path's.
DECISIONS = [("allow", "tokenfile"), ("deny", ""), ("allow", "authsvc"), ("error", "ldap")]
SAMPLES = 4096


def workload() -> list[tuple[str, str, float, bool]]:
    rng = random.Random(7)
    return [(*rng.choice(DECISIONS), rng.uniform(0.00005, 0.003), rng.random() < 0.9) for _ in range(SAMPLES)]


def per_update_ns(record: Callable[[str, str, float, bool], None], updates: int) -> float:
    requests = workload()
    started = time.perf_counter()
    for i in range(updates):
        decision, backend, seconds, cached = requests[i % SAMPLES]
        record(decision, backend, seconds, cached)
    return (time.perf_counter() - started) / updates * 1e9


def authsvc_recorder() -> Callable[[str, str, float, bool], None]:
    from authsvc.metrics.server import ServerMetrics

    return ServerMetrics().request


def prometheus_recorder() -> Callable[[str, str, float, bool], None]:
    """The three updates with stock objects, as the webhook would make them."""
    from prometheus_client import CollectorRegistry, Counter, Histogram

    from authsvc.metrics.server import LATENCY_BUCKETS

    registry = CollectorRegistry()
    requests = Counter("authsvc_tokenreview_requests", "", ["decision", "backend"], registry=registry)
    cache = Counter("authsvc_tokenreview_cache", "", ["result"], registry=registry)
    duration = Histogram("authsvc_tokenreview_duration_seconds", "", buckets=LATENCY_BUCKETS, registry=registry)

    def record(decision: str, backend: str, seconds: float, cached: bool) -> None:
        requests.labels(decision, backend).inc()
        cache.labels("hit" if cached else "miss").inc()
        duration.observe(seconds)

    return record


def child(variant: str, updates: int, rounds: int) -> None:
    """Run in a child process: print one JSON list of per-update ns, one per round."""
    record = prometheus_recorder() if variant == "prometheus" else authsvc_recorder()
    print(json.dumps([per_update_ns(record, updates) for _ in range(rounds)]))


def in_child(variant: str, updates: int, rounds: int, env: dict[str, str]) -> list[float]:
    args = [sys.executable, __file__, "--child", variant, f"--updates={updates}", f"--rounds={rounds}"]
    out = subprocess.run(args, env={**os.environ, **env}, check=True, capture_output=True, text=True).stdout
    return [float(x) for x in json.loads(out)]


def update_costs(updates: int, rounds: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"authsvc": [], "prometheus": [], "prometheus multiprocess": []}
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as directory:
        for _ in range(rounds):  # interleaved: a busy moment of the machine hits every variant
            results["authsvc"] += in_child("authsvc", updates, 1, {})
            results["prometheus"] += in_child("prometheus", updates, 1, {})
            multiprocess = {"PROMETHEUS_MULTIPROC_DIR": directory}
            results["prometheus multiprocess"] += in_child("prometheus", updates, 1, multiprocess)
    return results


def sharing_costs(processes: int, rounds: int) -> tuple[float, float, float]:
    """Medians in µs: a snapshot published; a /metrics answer of this process alone (no
    directory, as before); a /metrics answer summing `processes` snapshot files."""
    from authsvc.metrics.server import ServerMetrics
    from authsvc.metrics.share import SnapshotShare

    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as directory:
        workers = [ServerMetrics(share=SnapshotShare(Path(directory))) for _ in range(processes)]
        alone = ServerMetrics()
        for metrics in [*workers, alone]:
            for decision, backend, seconds, cached in workload():
                metrics.request(decision, backend, seconds, cached)
        own, others = workers[0], workers[1:]
        publishes, alone_scrapes, scrapes = [], [], []
        for _ in range(rounds * 100):
            own.request("allow", "tokenfile", 0.0001, True)  # a change, so that it is written
            publishes.append(_timed(lambda: _publish(own)))
            for other in others:
                _publish(other)
            alone_scrapes.append(_timed(alone.render))
            scrapes.append(_timed(own.render))
    return _median_us(publishes), _median_us(alone_scrapes), _median_us(scrapes)


def _median_us(seconds: list[float]) -> float:
    return statistics.median(seconds) * 1e6


def _publish(metrics: Any) -> None:
    metrics.share.publish(metrics.counts)


def _timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--updates", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--processes", type=int, default=4, help="snapshot files a scrape sums")
    parser.add_argument("--child", choices=["authsvc", "prometheus"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.updates, args.rounds)
        return
    results = update_costs(args.updates, args.rounds)
    base = statistics.median(results["authsvc"])
    print(f"one TokenReview counted (decision+backend, cache, latency); median of {args.rounds} rounds")
    print(f"of {args.updates} updates, one thread, {os.cpu_count()} CPUs")
    print(f"{'variant':40} {'ns/update':>10} {'x authsvc':>10}")
    for name, values in results.items():
        median = statistics.median(values)
        print(f"{name:40} {median:10.0f} {median / base:10.2f}")
    publish, alone, scrape = sharing_costs(args.processes, args.rounds)
    print(f"off the request path (authsvc/metrics/share.py), medians; files in {tempfile.gettempdir()}:")
    print(f"  one snapshot published (at most once a second per process)   {publish:8.1f} µs")
    print(f"  one /metrics answer, this process alone (no directory)       {alone:8.1f} µs")
    print(f"  one /metrics answer summing {args.processes} processes' snapshots        {scrape:8.1f} µs")


if __name__ == "__main__":
    main()
