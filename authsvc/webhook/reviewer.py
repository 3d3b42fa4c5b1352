"""Answering one TokenReview: cache, then the chain, then the decision, metrics and audit.

This is the webhook's hot path. A cached token is answered without touching a backend, and
its reply and audit members, once rendered for a given (apiVersion, audiences), are kept with
the cached answer: a hit costs a hash, a dict look-up, the audit write and the metrics. The
clock is read once and the token hashed once (cache key and audit fingerprint alike).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from authsvc.authn.chain import AuthenticatorChain
from authsvc.identity import UserInfo
from authsvc.metrics.server import ServerMetrics
from authsvc.redact import fingerprint, token_digest
from authsvc.webhook.audit import AuditLog, decision_fields
from authsvc.webhook.result_cache import ResultCache
from authsvc.webhook.tokenreview import Decision, TokenReviewRequest, decide, encode_reply
from pki.clock import Clock

# Renderings kept per cached answer; the API server sends one apiVersion and one audience list.
MAX_RENDERINGS = 4


@dataclass(frozen=True, slots=True)
class Rendered:
    decision: Decision
    body: bytes  # the TokenReview reply, JSON
    audit_fields: str  # see authsvc.webhook.audit.decision_fields


@dataclass(slots=True)
class Answer:
    """What the chain said about one token, and the replies rendered from it so far."""

    user: UserInfo | None
    error: str | None
    backend: str
    fingerprint: str
    renderings: dict[tuple[str, tuple[str, ...]], Rendered] = field(default_factory=dict)

    def render(self, request: TokenReviewRequest) -> Rendered:
        key = (request.api_version, request.audiences)
        rendered = self.renderings.get(key)
        if rendered is None:
            decision, reply = decide(request, self.user, self.error)
            user = self.user if decision is Decision.ALLOW else None
            fields = decision_fields(
                decision=decision, user=user, backend=self.backend, token_fingerprint=self.fingerprint, error=self.error
            )
            rendered = Rendered(decision, encode_reply(reply), fields)
            if len(self.renderings) < MAX_RENDERINGS:
                self.renderings[key] = rendered
        return rendered


class TokenReviewer:
    def __init__(
        self,
        chain: AuthenticatorChain,
        cache: ResultCache[Answer],
        metrics: ServerMetrics,
        audit: AuditLog,
        clock: Clock,
    ) -> None:
        self.chain = chain
        self.cache = cache
        self.metrics = metrics
        self.audit = audit
        self.clock = clock

    def review(self, request: TokenReviewRequest, client: str) -> tuple[Decision, bytes]:
        started = time.perf_counter()
        now = self.clock()
        timestamp = now.timestamp()
        digest = token_digest(request.token)
        answer = self.cache.get(digest, timestamp)
        cached = answer is not None
        if answer is None:
            answer = self._ask_chain(request.token, digest, timestamp)
        rendered = answer.render(request)
        self.audit.decision(now, rendered.audit_fields, client, cached)
        self.metrics.request(rendered.decision, answer.backend, time.perf_counter() - started, cached)
        return rendered.decision, rendered.body

    def _ask_chain(self, token: str, digest: bytes, now: float) -> Answer:
        result = self.chain.authenticate(token)
        for name in result.unavailable:
            self.metrics.backend_error(name)
        answer = Answer(result.user, result.error, result.backend, fingerprint(digest))
        if result.error is None:  # an outage is never cached: the next request asks again
            self.cache.put(digest, answer, now, positive=result.user is not None, not_after=result.not_after)
        return answer

    def invalid(self) -> None:
        """Count a malformed request (answered 4xx by the HTTP layer)."""
        self.metrics.request(Decision.INVALID, "", None)
