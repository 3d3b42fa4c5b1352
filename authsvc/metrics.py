"""Prometheus metrics of the webhook, in a registry of their own (one per app, not the global one).

The hot path records a request with one call under one lock (plain counters and a bucket
index found by bisect); prometheus-client renders them at scrape time through a custom
collector (its documented `collect()` interface). The usual Counter/Histogram objects cost
several calls and locks per update, as much as the rest of a cached TokenReview.

Each granian worker is a process with its own registry: a scrape sees the worker that
answered it. Rates and ratios stay right; absolute counters are per worker (docs/webhook.md).
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from flask import Flask

# TokenReview answers take ~0.1 ms from cache and up to a backend's timeout (≤ 25 s) otherwise.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0)
METRICS_EXTENSION = "authsvc.metrics"


class WebhookMetrics(Collector):
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str], int] = {}
        self._cache = {"hit": 0, "miss": 0}
        self._backend_errors: dict[str, int] = {}
        self._buckets = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one is +Inf
        self._latency_sum = 0.0
        self.registry.register(self)

    def request(self, decision: str, backend: str, seconds: float | None, cached: bool | None = None) -> None:
        """Count an answer: its decision and backend, its latency (None for a refused request,
        answered 4xx before any decision) and whether the result cache had it."""
        key = (decision, backend)
        with self._lock:
            self._requests[key] = self._requests.get(key, 0) + 1
            if cached is not None:
                self._cache["hit" if cached else "miss"] += 1
            if seconds is not None:
                self._buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
                self._latency_sum += seconds

    def backend_error(self, backend: str) -> None:
        with self._lock:
            self._backend_errors[backend] = self._backend_errors.get(backend, 0) + 1

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            requests, cache = dict(self._requests), dict(self._cache)
            errors, buckets, latency_sum = dict(self._backend_errors), list(self._buckets), self._latency_sum
        family = CounterMetricFamily(
            "authsvc_tokenreview_requests",
            "TokenReview requests answered, by decision (allow, deny, error, invalid) and backend.",
            labels=["decision", "backend"],
        )
        for (decision, backend), count in sorted(requests.items()):
            family.add_metric([decision, backend], count)
        yield family
        yield _histogram(buckets, latency_sum)
        family = CounterMetricFamily(
            "authsvc_authn_backend_errors",
            "Times a backend could not decide (unreachable, broken config, internal error).",
            labels=["backend"],
        )
        for backend, count in sorted(errors.items()):
            family.add_metric([backend], count)
        yield family
        family = CounterMetricFamily(
            "authsvc_tokenreview_cache", "Result cache look-ups, by result (hit, miss).", labels=["result"]
        )
        for result, count in cache.items():
            family.add_metric([result], count)
        yield family

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _histogram(buckets: list[int], latency_sum: float) -> HistogramMetricFamily:
    cumulative, running = [], 0
    for bound, count in zip((*(str(b) for b in LATENCY_BUCKETS), "+Inf"), buckets, strict=True):
        running += count
        cumulative.append((bound, running))
    return HistogramMetricFamily(
        "authsvc_tokenreview_duration_seconds",
        "Time to decide a TokenReview (cache, chain, audit), without HTTP and TLS.",
        buckets=cumulative,
        sum_value=latency_sum,
    )


def metrics_for(app: Flask) -> WebhookMetrics:
    """The app's metrics, created with the app (each app its own registry: tests build many)."""
    metrics = app.extensions.get(METRICS_EXTENSION)
    if metrics is None:
        metrics = app.extensions.setdefault(METRICS_EXTENSION, WebhookMetrics())
    assert isinstance(metrics, WebhookMetrics)
    return metrics
