"""Prometheus metrics of `authsvc csr-signer`, in a registry of its own.

A signer decides tens of requests per second at most, so prometheus-client's ordinary
Counter/Histogram objects are cheap enough here (unlike the TokenReview hot path, see
authsvc/metrics/server.py). `serve(registry, bind)` exposes them over plain HTTP on the
address `csr_signer.metrics_bind` names (loopback or the pod network: they carry no secret).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

# From approval to the certificate in status: ~10 ms on a quiet control plane, seconds when the
# signer took over after a leader died.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class SignerMetrics:
    """The signer's counters; each method is one event."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.decisions = Counter(
            "authsvc_csr_decisions",
            "CertificateSigningRequest decisions: signed, failed (refused by the policy), approved, denied.",
            ("signer", "decision", "reason"),
            registry=self.registry,
        )
        self.approve_to_issue = Histogram(
            "authsvc_csr_approve_to_issue_seconds",
            "From the Approved condition's lastUpdateTime (kept to the second by the API server) to the "
            "certificate stored in status.",
            ("signer",),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.sign_duration = Histogram(
            "authsvc_csr_sign_seconds",
            "From the signer receiving an approved request to its certificate stored in status.",
            ("signer",),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.leader = Gauge(
            "authsvc_csr_signer_leader", "1 while this replica holds the lease and may sign.", registry=self.registry
        )
        self.watch_restarts = Counter(
            "authsvc_csr_watch_restarts",
            "Watches of CertificateSigningRequests started again, by cause (timeout, gone: 410, error).",
            ("cause",),
            registry=self.registry,
        )
        self.errors = Counter(
            "authsvc_csr_errors",
            "Requests that could not be decided now (API server or CA unavailable), retried later.",
            ("operation",),
            registry=self.registry,
        )

    def decided(self, signer: str, decision: str, reason: str = "") -> None:
        self.decisions.labels(signer, decision, reason).inc()

    def signed(self, signer: str, *, since_approval: float | None, since_seen: float) -> None:
        self.decided(signer, "signed")
        if since_approval is not None:
            self.approve_to_issue.labels(signer).observe(max(0.0, since_approval))
        self.sign_duration.labels(signer).observe(max(0.0, since_seen))

    def error(self, operation: str) -> None:
        self.errors.labels(operation).inc()


def serve(metrics: SignerMetrics, bind: tuple[str, int]) -> None:
    """/metrics over plain HTTP from a daemon thread (prometheus-client's own server)."""
    host, port = bind
    start_http_server(port, addr=host, registry=metrics.registry)
