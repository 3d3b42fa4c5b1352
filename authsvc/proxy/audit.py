"""The proxy's audit line: one per request, through the audit log the webhook writes to.

    {"time":"2030-01-01T00:00:00.000+00:00","event":"proxy","user":"alice","groups":["dev"],
     "verb":"list","method":"GET","path":"/api/v1/namespaces/default/pods","code":200,
     "credential":"token:88ac3a398c5b","client":"10.0.0.1","cached":true}

Written when the API server's status line is known (a watch is logged as it starts, not when
it ends), or when the proxy refuses the request (with the `reason`, which the client is not
told in full). Never a secret: the path without its query string (an exec's command line is
in the query), a token as its SHA-256 prefix, a certificate as its serial.

`record_request` is the one function that writes it, so the audit trail of the access
lifecycle (authsvc/access/) can take these lines over in one place.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from authsvc.identity import UserInfo
from authsvc.proxy.credentials import Credential
from authsvc.proxy.request_info import RequestInfo
from authsvc.webhook.audit import AuditLog

EVENT = "proxy"


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
    fields: dict[str, Any] = {
        "user": user.username if user is not None else None,
        "groups": list(user.groups) if user is not None else [],
        "verb": info.verb,
        "method": method,
        "path": path,
        "code": code,
        "credential": credential.describe() if credential is not None else None,
        "client": client,
    }
    if cached is not None:
        fields["cached"] = cached
    if reason:
        fields["reason"] = reason
    audit.event(when, EVENT, fields)
