"""Prometheus metrics of the server (TokenReviews, logins), in a registry per app (not the global one).

The hot path records a request with one call under one lock (plain counters and a bucket
index found by bisect); prometheus-client renders them at scrape time through a custom
collector (its documented `collect()` interface). The usual Counter/Histogram objects cost
several calls and locks per update, as much as the rest of a cached TokenReview, and
prometheus-client's multiprocess mode more again (bench/metrics.py).

Each granian worker, of either listener, is a process with its own counters. Under
`authsvc serve` they share a directory (authsvc/metrics/share.py): each process publishes a
snapshot of its counters there, and /metrics, wherever it is asked, answers the sum over every
process of the run, monotonic from one scrape to the next, other processes' counts up to a
second late. Without the directory (an app built in-process, `serve --workers 1` without a
public listener) it answers this process's own counters.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from authsvc.metrics.share import Counts, SnapshotShare

if TYPE_CHECKING:
    from flask import Flask

# TokenReview answers take ~0.1 ms from cache and up to a backend's timeout (≤ 25 s) otherwise.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0)
BUCKET_BOUNDS = (*(str(b) for b in LATENCY_BUCKETS), "+Inf")
METRICS_EXTENSION = "authsvc.metrics.server"


@dataclass(frozen=True, slots=True)
class Family:
    """A counter family; its samples are keyed (name, label values) in Counts."""

    name: str
    documentation: str
    labels: tuple[str, ...]


REQUESTS = Family(
    "authsvc_tokenreview_requests",
    "TokenReview requests answered, by decision (allow, deny, error, invalid) and backend.",
    ("decision", "backend"),
)
BACKEND_ERRORS = Family(
    "authsvc_authn_backend_errors",
    "Times a backend could not decide (unreachable, broken config, internal error).",
    ("backend",),
)
CACHE = Family("authsvc_tokenreview_cache", "Result cache look-ups, by result (hit, miss).", ("result",))
LOGIN_ATTEMPTS = Family(
    "authsvc_login_attempts", "POST /login answers, by result (ok, refused, rate_limited, unavailable).", ("result",)
)
LDAP_ERRORS = Family(
    "authsvc_ldap_errors",
    "LDAP operations that failed (directory unreachable, timeout, unexpected answer), by operation.",
    ("operation",),
)
DURATION = "authsvc_tokenreview_duration_seconds"
DURATION_HELP = "Time to decide a TokenReview (cache, chain, audit), without HTTP and TLS."
# The histogram in Counts: per-bucket (not cumulative) counts by upper bound, and the sum.
DURATION_BUCKET, DURATION_SUM = f"{DURATION}:bucket", f"{DURATION}:sum"


class ServerMetrics(Collector):
    def __init__(self, registry: CollectorRegistry | None = None, share: SnapshotShare | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.share = share
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str], int] = {}
        self._cache = {"hit": 0, "miss": 0}
        self._backend_errors: dict[str, int] = {}
        self._buckets = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one is +Inf
        self._latency_sum = 0.0
        self._logins: dict[str, int] = {}
        self._ldap_errors: dict[str, int] = {}
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

    def login_result(self, result: str) -> None:
        """A POST /login answer: ok, refused, rate_limited or unavailable (authsvc.login.service)."""
        with self._lock:
            self._logins[result] = self._logins.get(result, 0) + 1

    def ldap_error(self, operation: str) -> None:
        """An LDAP operation failed: counted by operation, and as an error of the ldap backend."""
        with self._lock:
            self._ldap_errors[operation] = self._ldap_errors.get(operation, 0) + 1
            self._backend_errors["ldap"] = self._backend_errors.get("ldap", 0) + 1

    def counts(self) -> Counts:
        """This process's counters, the ones that are not zero (what a snapshot holds)."""
        with self._lock:
            requests, cache = dict(self._requests), dict(self._cache)
            errors, buckets, latency_sum = dict(self._backend_errors), list(self._buckets), self._latency_sum
            logins, ldap_errors = dict(self._logins), dict(self._ldap_errors)
        counts: Counts = {(REQUESTS.name, labels): value for labels, value in requests.items()}
        by_one_label = ((BACKEND_ERRORS, errors), (CACHE, cache), (LOGIN_ATTEMPTS, logins), (LDAP_ERRORS, ldap_errors))
        for family, samples in by_one_label:
            counts.update({(family.name, (label,)): value for label, value in samples.items()})
        for bound, count in zip(BUCKET_BOUNDS, buckets, strict=True):
            counts[(DURATION_BUCKET, (bound,))] = count
        counts[(DURATION_SUM, ())] = latency_sum
        return {key: value for key, value in counts.items() if value}

    def collect(self) -> Iterator[Metric]:
        counts = self.counts() if self.share is None else self.share.merged(self.counts)
        yield _counter(REQUESTS, counts)
        yield _histogram(counts)
        yield _counter(BACKEND_ERRORS, counts)
        yield _counter(CACHE, counts, always=[("hit",), ("miss",)])
        yield _counter(LOGIN_ATTEMPTS, counts)
        yield _counter(LDAP_ERRORS, counts)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _counter(family: Family, counts: Counts, always: list[tuple[str, ...]] | None = None) -> CounterMetricFamily:
    """The family's samples in `counts`, sorted by labels; `always` ones are shown even at 0."""
    values = dict.fromkeys(always or [], 0.0)
    values.update({labels: value for (name, labels), value in counts.items() if name == family.name})
    metric = CounterMetricFamily(family.name, family.documentation, labels=family.labels)
    for labels, value in sorted(values.items()):
        metric.add_metric(list(labels), value)
    return metric


def _histogram(counts: Counts) -> HistogramMetricFamily:
    cumulative, running = [], 0.0
    for bound in BUCKET_BOUNDS:
        running += counts.get((DURATION_BUCKET, (bound,)), 0.0)
        cumulative.append((bound, running))
    return HistogramMetricFamily(
        DURATION, DURATION_HELP, buckets=cumulative, sum_value=counts.get((DURATION_SUM, ()), 0.0)
    )


def attach_metrics(app: Flask, share_directory: Path | None = None) -> ServerMetrics:
    """Give the app its metrics; with `share_directory` (set by `authsvc serve`), summed over
    every process of the run, this one publishing its snapshot from a thread."""
    share = SnapshotShare(share_directory) if share_directory is not None else None
    metrics = ServerMetrics(share=share)
    app.extensions[METRICS_EXTENSION] = metrics
    if share is not None:
        share.publish_until_exit(metrics.counts)
    return metrics


def metrics_for(app: Flask) -> ServerMetrics:
    """The app's metrics (each app its own registry: tests build many); made on first use when
    the app was built without `attach_metrics`."""
    metrics = app.extensions.get(METRICS_EXTENSION)
    if metrics is None:
        metrics = app.extensions.setdefault(METRICS_EXTENSION, ServerMetrics())
    assert isinstance(metrics, ServerMetrics)
    return metrics
