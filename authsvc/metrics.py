"""Prometheus metrics of the webhook, in a registry of their own (one per app, not the global one).

Each granian worker is a process with its own registry: a scrape sees the worker that answered
it. Rates and ratios stay right; absolute counters are per worker (see docs/webhook.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

if TYPE_CHECKING:
    from flask import Flask

# TokenReview answers take ~0.1 ms from cache and up to a backend's timeout (≤ 25 s) otherwise.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0)


class WebhookMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.requests = Counter(
            "authsvc_tokenreview_requests",
            "TokenReview requests answered, by decision (allow, deny, error, invalid) and backend.",
            ["decision", "backend"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "authsvc_tokenreview_duration_seconds",
            "Time to decide a TokenReview (cache, chain, audit), without HTTP and TLS.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.backend_errors = Counter(
            "authsvc_authn_backend_errors",
            "Times a backend could not decide (unreachable, broken config, internal error).",
            ["backend"],
            registry=self.registry,
        )
        self.cache = Counter(
            "authsvc_tokenreview_cache",
            "Result cache look-ups, by result (hit, miss).",
            ["result"],
            registry=self.registry,
        )
        self._hit = self.cache.labels("hit")
        self._miss = self.cache.labels("miss")
        # labels() validates and locks on every call: keep the children it hands out.
        self._request_children: dict[tuple[str, str], Counter] = {}

    def request(self, decision: str, backend: str, seconds: float | None) -> None:
        """Count an answer; `seconds` None for requests refused before any decision (4xx)."""
        child = self._request_children.get((decision, backend))
        if child is None:
            child = self._request_children.setdefault((decision, backend), self.requests.labels(decision, backend))
        child.inc()
        if seconds is not None:
            self.latency.observe(seconds)

    def cache_lookup(self, hit: bool) -> None:
        (self._hit if hit else self._miss).inc()

    def backend_error(self, backend: str) -> None:
        self.backend_errors.labels(backend).inc()

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


METRICS_EXTENSION = "authsvc.metrics"


def metrics_for(app: Flask) -> WebhookMetrics:
    """The app's metrics, created with the app (each app its own registry: tests build many)."""
    metrics = app.extensions.get(METRICS_EXTENSION)
    if metrics is None:
        metrics = app.extensions.setdefault(METRICS_EXTENSION, WebhookMetrics())
    assert isinstance(metrics, WebhookMetrics)
    return metrics
