"""The TokenReview line of the audit trail (authsvc/audit), rendered once per cached answer.

    {"time":"2030-01-01T00:00:00.000+00:00","actor":"kube-apiserver","action":"tokenreview",
     "subject":"alice","outcome":"allow","reason":"","ids":{"token":"88ac3a398c5b"},
     "groups":["dev"],"backend":"tokenfile","client":"10.0.0.1","cached":false}

The token itself never: `ids.token` is the first 12 hex digits of its SHA-256. The members
that depend only on the decision are rendered here once per cached answer (and once per
refusal of a cached answer: a revoked token, a banned user); `AuditLog.tokenreview` adds the
time, the client address and whether the answer came from the cache.
"""

from __future__ import annotations

from authsvc.audit.events import APISERVER, TOKENREVIEW, AuditEvent
from authsvc.identity import UserInfo


def tokenreview_members(
    *,
    decision: str,
    user: UserInfo | None,
    backend: str,
    token_fingerprint: str,
    error: str | None = None,
    reason: str = "",
) -> str:
    """The members of a TokenReview line after `time` (a JSON object's members, no braces).

    `user` is who the answer names (None for a denial); `reason` says why an identity was
    refused (revoked, banned); `error` is a backend outage's message (an error answer).
    """
    details: dict[str, object] = {"groups": list(user.groups) if user is not None else [], "backend": backend}
    event = AuditEvent(
        TOKENREVIEW,
        decision,
        actor=APISERVER,
        subject=user.username if user is not None else None,
        reason=reason or error or "",
        ids={"token": token_fingerprint},
        details=details,
    )
    return event.members()
