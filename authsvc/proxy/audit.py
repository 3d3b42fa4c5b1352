"""The proxy's line of the audit trail (authsvc/audit): one per request.

    {"time":"2030-01-01T00:00:00.000+00:00","actor":"proxy","action":"proxy.request",
     "subject":"alice","outcome":"forwarded","reason":"","ids":{"token":"88ac3a398c5b"},
     "groups":["dev"],"verb":"list","method":"GET","path":"/api/v1/namespaces/default/pods",
     "code":200,"client":"10.0.0.1","cached":true}

Written when the API server's status line is known (a watch is logged as it starts, not when
it ends), or when the proxy refuses the request (outcome `refused`, with the `reason`, which
the client is not told in full). Never a secret: the path without its query string (an exec's
command line is in the query), a token as its SHA-256 prefix (`ids.token`, as the TokenReview
line names it), a certificate as its serial (`ids.serial`); a token authsvc signed also by its
`ids.jti` (what `authsvc token revoke` takes).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from authsvc.audit.events import PROXY_REQUEST, AuditEvent
from authsvc.audit.log import AuditLog
from authsvc.identity import UserInfo
from authsvc.proxy.credentials import Credential, CredentialKind
from authsvc.proxy.request_info import RequestInfo

ACTOR = "proxy"
FORWARDED = "forwarded"
REFUSED = "refused"


def record_request(
    audit: AuditLog,
    when: dt.datetime,
    *,
    user: UserInfo | None,
    info: RequestInfo,
    method: str,
    path: str,
    code: int,
    credential: Credential | None,
    client: str,
    cached: bool | None = None,
    reason: str = "",
) -> None:
    if not audit.enabled:
        return
    details: dict[str, Any] = {
        "groups": list(user.groups) if user is not None else [],
        "verb": info.verb,
        "method": method,
        "path": path,
        "code": code,
        "client": client,
    }
    if cached is not None:
        details["cached"] = cached
    event = AuditEvent(
        PROXY_REQUEST,
        REFUSED if reason or user is None else FORWARDED,
        actor=ACTOR,
        subject=user.username if user is not None else None,
        reason=reason,
        ids=_ids(credential),
        details=details,
    )
    audit.record(when, event)


def _ids(credential: Credential | None) -> dict[str, str]:
    if credential is None:
        return {}
    if credential.kind is CredentialKind.CERTIFICATE:
        return {"serial": credential.fingerprint}
    ids = {"token": credential.fingerprint}
    if credential.token_id is not None:
        ids["jti"] = credential.token_id
    return ids
