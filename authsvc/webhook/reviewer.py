"""Answering one TokenReview: cache, then the chain, then the revocation check, the decision,
metrics and audit.

This is the webhook's hot path. A cached token is answered without touching a backend, and
its reply and audit members, once rendered for a given (apiVersion, audiences), are kept with
the cached answer: a hit costs a hash, a dict look-up, the revocation check, the audit write
and the metrics. The clock is read once and the token hashed once (cache key and audit
fingerprint alike).

The revocation check runs on every answer that would authenticate someone, cached or not:
the user's folded name against the banned users and the credential's id (an authsvc token's
jti) against the revoked ones, in the in-memory sets authsvc/access/denylist.py reads again
every `tokens.cache_refresh`. So a revoked token or a banned user is refused within
`cache_refresh`, whatever `authn.cache_ttl` is. A refusal is not cached: the chain's answer
stays in the cache, and `access restore` lets it through again at once. When the sets have
never been read (the database down since start), an identity is answered with an error, not
an identity: fail closed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from authsvc.access.denylist import Denylist
from authsvc.audit.log import AuditLog
from authsvc.authn.chain import AuthenticatorChain
from authsvc.errors import BackendUnavailable
from authsvc.identity import UserInfo, fold_username
from authsvc.metrics.server import ServerMetrics
from authsvc.redact import fingerprint, token_digest
from authsvc.webhook.audit import tokenreview_members
from authsvc.webhook.result_cache import ResultCache
from authsvc.webhook.tokenreview import Decision, TokenReviewRequest, decide, encode_reply, tokenreview_reply
from pki.clock import Clock

# Renderings kept per cached answer; the API server sends one apiVersion and one audience list.
MAX_RENDERINGS = 4
# The backend name in metrics and error answers when the revocation set cannot be read.
DENYLIST_BACKEND = "revocations"
REVOKED = "credential revoked"
_ALLOW = Decision.ALLOW
BANNED = "access revoked (authsvc access revoke)"


@dataclass(frozen=True, slots=True)
class Rendered:
    decision: Decision
    body: bytes  # the TokenReview reply, JSON
    audit_members: str  # see authsvc.webhook.audit.tokenreview_members


@dataclass(slots=True)
class Answer:
    """What the chain said about one token, and the replies rendered from it so far."""

    user: UserInfo | None
    error: str | None
    backend: str
    fingerprint: str
    # fold_username(user.username): the key banned users are kept under; the credential's id (an
    # authsvc token's jti), checked against the revoked ones. Computed once per answer.
    folded: str = ""
    credential: str = ""
    renderings: dict[tuple[str, tuple[str, ...]], Rendered] = field(default_factory=dict)
    refusals: dict[tuple[str, str], Rendered] = field(default_factory=dict)

    def render(self, request: TokenReviewRequest) -> Rendered:
        key = (request.api_version, request.audiences)
        rendered = self.renderings.get(key)
        if rendered is None:
            decision, reply = decide(request, self.user, self.error)
            user = self.user if decision is Decision.ALLOW else None
            members = tokenreview_members(
                decision=decision, user=user, backend=self.backend, token_fingerprint=self.fingerprint, error=self.error
            )
            rendered = Rendered(decision, encode_reply(reply), members)
            if len(self.renderings) < MAX_RENDERINGS:
                self.renderings[key] = rendered
        return rendered

    def refuse(self, request: TokenReviewRequest, reason: str) -> Rendered:
        """The denial of this identity (revoked, banned), rendered once per (apiVersion, reason)."""
        key = (request.api_version, reason)
        rendered = self.refusals.get(key)
        if rendered is None:
            members = tokenreview_members(
                decision=Decision.DENY,
                user=self.user,
                backend=self.backend,
                token_fingerprint=self.fingerprint,
                reason=reason,
            )
            rendered = Rendered(Decision.DENY, encode_reply(tokenreview_reply(request.api_version)), members)
            if len(self.refusals) < MAX_RENDERINGS:
                self.refusals[key] = rendered
        return rendered


class TokenReviewer:
    def __init__(
        self,
        chain: AuthenticatorChain,
        cache: ResultCache[Answer],
        metrics: ServerMetrics,
        audit: AuditLog,
        clock: Clock,
        denylist: Denylist | None = None,
    ) -> None:
        """`denylist` None: no revocation check (tests of the chain alone)."""
        self.chain = chain
        self.cache = cache
        self.metrics = metrics
        self.audit = audit
        self.clock = clock
        self.denylist = denylist

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
        denylist = self.denylist
        if rendered.decision is _ALLOW and denylist is not None:
            # The revocation check, inline: two set look-ups on every answer that names someone.
            try:
                denials = denylist.current()
            except BackendUnavailable as e:
                rendered = self._unavailable(request, answer, e)
            else:
                if answer.folded in denials.banned:
                    rendered = answer.refuse(request, BANNED)
                elif answer.credential and answer.credential in denials.revoked_ids:
                    rendered = answer.refuse(request, REVOKED)
        self.audit.tokenreview(now, timestamp, rendered.audit_members, client, cached)
        self.metrics.request(rendered.decision, answer.backend, time.perf_counter() - started, cached)
        return rendered.decision, rendered.body

    def _unavailable(self, request: TokenReviewRequest, answer: Answer, error: BackendUnavailable) -> Rendered:
        self.metrics.backend_error(DENYLIST_BACKEND)
        return _unavailable(request, answer, str(error))

    def _ask_chain(self, token: str, digest: bytes, now: float) -> Answer:
        result = self.chain.authenticate(token)
        for name in result.unavailable:
            self.metrics.backend_error(name)
        user = result.user
        folded, credential = (fold_username(user.username), user.credential_id) if user is not None else ("", "")
        answer = Answer(user, result.error, result.backend, fingerprint(digest), folded, credential)
        if result.error is None:  # an outage is never cached: the next request asks again
            self.cache.put(digest, answer, now, positive=user is not None, not_after=result.not_after)
        return answer

    def invalid(self) -> None:
        """Count a malformed request (answered 4xx by the HTTP layer)."""
        self.metrics.request(Decision.INVALID, "", None)


def _unavailable(request: TokenReviewRequest, answer: Answer, message: str) -> Rendered:
    """An error answer (not cached by the API server) when the revocation set cannot be read."""
    error = f"authentication backend unavailable: {DENYLIST_BACKEND}"
    members = tokenreview_members(
        decision=Decision.ERROR, user=None, backend=DENYLIST_BACKEND, token_fingerprint=answer.fingerprint,
        error=f"{error} ({message})",
    )  # fmt: skip
    return Rendered(Decision.ERROR, encode_reply(tokenreview_reply(request.api_version, error=error)), members)
