"""The proxy's Prometheus metrics: plain counters under one lock, rendered at scrape time
through a custom collector registered in the runtime's registry (as authsvc/metrics/server.py,
and for the same reason: a request pays one call, not several metric objects' locks).

- `authsvc_proxy_requests_total{outcome,code}`: outcome `forwarded`, `unauthenticated` (401
  before anything reached the API server), `revoked`, `unavailable` (a backend could not decide:
  503), `upstream_error` (the API server could not be reached: 502); code = the status sent;
- `authsvc_proxy_auth_cache_total{result}`: hits and misses of the credential caches;
- `authsvc_proxy_upgrades_total`: protocol upgrades (exec, attach, port-forward) piped;
- `authsvc_proxy_active_streams`: requests being forwarded now (watches, logs -f, tunnels);
- `authsvc_proxy_response_start_seconds`: from the request to the API server's status line
  (authentication included), the time the proxy adds lives there.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ProxyMetrics(Collector):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str], int] = {}
        self._cache = {"hit": 0, "miss": 0}
        self._upgrades = 0
        self._active = 0
        self._buckets = [0] * (len(BUCKETS) + 1)
        self._sum = 0.0

    def request(self, outcome: str, code: int, cached: bool | None = None) -> None:
        key = (outcome, str(code))
        with self._lock:
            self._requests[key] = self._requests.get(key, 0) + 1
            if cached is not None:
                self._cache["hit" if cached else "miss"] += 1

    def response_started(self, seconds: float) -> None:
        with self._lock:
            self._buckets[bisect_left(BUCKETS, seconds)] += 1
            self._sum += seconds

    def stream(self, delta: int) -> None:
        """+1 when a forwarded request starts, -1 when it ends."""
        with self._lock:
            self._active += delta

    def upgrade(self) -> None:
        with self._lock:
            self._upgrades += 1

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            requests, cache, upgrades, active = dict(self._requests), dict(self._cache), self._upgrades, self._active
            buckets, total = list(self._buckets), self._sum
        family = CounterMetricFamily(
            "authsvc_proxy_requests", "Requests the proxy answered, by outcome and status.", labels=("outcome", "code")
        )
        for labels, value in sorted(requests.items()):
            family.add_metric(list(labels), value)
        yield family
        cached = CounterMetricFamily(
            "authsvc_proxy_auth_cache", "Credential cache look-ups, by result (hit, miss).", labels=("result",)
        )
        for result, value in sorted(cache.items()):
            cached.add_metric([result], value)
        yield cached
        yield CounterMetricFamily(
            "authsvc_proxy_upgrades", "Protocol upgrades piped (exec, attach, port-forward).", value=upgrades
        )
        yield GaugeMetricFamily("authsvc_proxy_active_streams", "Requests being forwarded now.", value=active)
        cumulative, running = [], 0
        for bound, count in zip((*(str(b) for b in BUCKETS), "+Inf"), buckets, strict=True):
            running += count
            cumulative.append((bound, float(running)))
        yield HistogramMetricFamily(
            "authsvc_proxy_response_start_seconds",
            "From a request to the API server's status line, authentication included.",
            buckets=cumulative,
            sum_value=total,
        )
