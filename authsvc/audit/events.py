"""The audit trail's schema: what one line says, and how it is rendered.

Every line has the same members, in this order, then the action's own details:

- `time`: when (ISO 8601, milliseconds, UTC offset);
- `actor`: who asked: `cli:<unix user>` for a command, `kube-apiserver` for a TokenReview,
  the user name typed at /login, `proxy` for a request through `authsvc proxy`, `rotate`, `csr-signer`;
- `action`: what (the names below: `cert.issue`, `token.revoke`, `access.ban`, `login`, ...);
- `subject`: whose access it is about (a user name), or null;
- `outcome`: `ok`, `refused`, `failed`; a TokenReview's `allow`, `deny`, `error`; a CSR's
  `approved`, `denied`, `signed`, `failed`;
- `reason`: why (a refusal's reason, the operator's words for a revocation), or "";
- `ids`: the credentials and objects concerned (`serial`, `jti`, `token` fingerprint,
  `binding`, `csr`), never a secret;
- then details: `groups`, `backend`, `client`, `cached`, `expiresAt`, `mode`, ...
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# --- actions ----------------------------------------------------------------------------------
TOKENREVIEW = "tokenreview"
LOGIN = "login"
CERT_ISSUE = "cert.issue"
CERT_RENEW = "cert.renew"
CERT_REVOKE = "cert.revoke"
TOKEN_ISSUE = "token.issue"
TOKEN_REVOKE = "token.revoke"
BOOTSTRAP_TOKEN_ISSUE = "bootstrap-token.issue"
BOOTSTRAP_TOKEN_DELETE = "bootstrap-token.delete"
STATIC_TOKEN_ISSUE = "static-token.issue"
STATIC_TOKEN_REMOVE = "static-token.remove"
KUBECONFIG_ISSUE = "kubeconfig.issue"
OIDC_SIGN_IN_REVOKE = "oidc-sign-in.revoke"
ACCESS_BAN = "access.ban"
ACCESS_RESTORE = "access.restore"
GRANT_CREATE = "grant.create"
GRANT_DELETE = "grant.delete"
CSR_DECISION = "csr.decision"
PROXY_REQUEST = "proxy.request"
# Rotation's other actions are "rotation.<kind>" (crl, prune, signing-key, kubeconfig, ...).
ROTATION_PREFIX = "rotation."

# --- actors and outcomes ----------------------------------------------------------------------
APISERVER = "kube-apiserver"
ROTATE = "rotate"
OK = "ok"
REFUSED = "refused"
FAILED = "failed"

SCHEMA = ("time", "actor", "action", "subject", "outcome", "reason", "ids")
# ASCII only: a name with bidi controls or look-alike letters shows as \u escapes, not as what it mimics.
ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One line of the trail, before its time is added."""

    action: str
    outcome: str
    actor: str
    subject: str | None = None
    reason: str = ""
    ids: Mapping[str, str] = field(default_factory=dict)
    # The action's own members after the schema's (never one of SCHEMA's names).
    details: Mapping[str, Any] = field(default_factory=dict)

    def members(self) -> str:
        """The line's members after `time`, as JSON text without braces."""
        ids = self.ids
        fields: dict[str, Any] = {
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "outcome": self.outcome,
            "reason": self.reason,
            "ids": ids if type(ids) is dict else dict(ids),  # the encoder takes a dict, not any Mapping
        }
        for key, value in self.details.items():  # a line per issued token: no generator here
            if key not in fields and key != "time":
                fields[key] = value
        return ENCODER.encode(fields)[1:-1]


def timestamp(when: dt.datetime) -> str:
    return when.isoformat(timespec="milliseconds")
