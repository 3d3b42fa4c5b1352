"""Answering one TokenReview: cache, then the chain, then the decision, metrics and audit.

This is the webhook's hot path (a cached token is answered without touching a backend), so
it reads the clock once, hashes the token once (cache key and audit fingerprint alike) and
builds nothing heavy per request.
"""

from __future__ import annotations

import time
from typing import Any

from authsvc.audit import AuditLog
from authsvc.authn.chain import AuthenticatorChain, ChainResult
from authsvc.cache import ResultCache
from authsvc.metrics import WebhookMetrics
from authsvc.redact import fingerprint, token_digest
from authsvc.tokenreview import Decision, TokenReviewRequest, decide
from pki.clock import Clock


class TokenReviewer:
    def __init__(
        self, chain: AuthenticatorChain, cache: ResultCache, metrics: WebhookMetrics, audit: AuditLog, clock: Clock
    ) -> None:
        self.chain = chain
        self.cache = cache
        self.metrics = metrics
        self.audit = audit
        self.clock = clock

    def review(self, request: TokenReviewRequest, client: str) -> tuple[Decision, dict[str, Any]]:
        started = time.perf_counter()
        now = self.clock()
        timestamp = now.timestamp()
        digest = token_digest(request.token)
        cached = self.cache.get(digest, timestamp)
        self.metrics.cache_lookup(cached is not None)
        if cached is not None:
            user, error = cached[0], None
            backend = user.backend if user is not None else ""
        else:
            result = self.chain.authenticate(request.token)
            self._remember(digest, result, timestamp)
            user, error, backend = result.user, result.error, result.backend
        decision, reply = decide(request, user, error)
        self.audit.decision(
            when=now,
            decision=decision,
            user=user if decision is Decision.ALLOW else None,
            backend=backend,
            token_fingerprint=fingerprint(digest),
            client=client,
            cached=cached is not None,
            error=error,
        )
        self.metrics.request(decision, backend, time.perf_counter() - started)
        return decision, reply

    def _remember(self, digest: bytes, result: ChainResult, now: float) -> None:
        for name in result.unavailable:
            self.metrics.backend_error(name)
        if result.error is None:  # an outage is never cached: the next request asks again
            self.cache.put(digest, result.user, now, result.not_after)

    def invalid(self) -> None:
        """Count a malformed request (answered 4xx by the HTTP layer)."""
        self.metrics.request(Decision.INVALID, "", None)
