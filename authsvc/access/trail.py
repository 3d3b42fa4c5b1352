"""The audit lines of what changes access: issued, revoked, banned, restored, granted, decided.

Each function builds one `AuditEvent` (authsvc/audit/events.py); the caller writes it with
`AuditLog.record(now, event)`. Ids only: a serial, a token id, a binding's name; never a token,
a key or a password.

`csr_decision` is for the CSR signer (authsvc/cluster): one line per CertificateSigningRequest
it approves, denies or signs.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from authsvc.audit import events
from authsvc.audit.events import AuditEvent

if TYPE_CHECKING:  # the token stack (PyJWT) is not loaded by the commands that only issue certificates
    from authsvc.audit.log import AuditLog
    from authsvc.cluster.apply import Change
    from authsvc.oidc.sign_ins import SignIn
    from pki.clock import Clock
    from pki.inventory import CertRecord
    from pki.tokens.service import IssuedToken
    from pki.tokens.signing_keys import TokenRecord

# Certificate requesters that are the user themselves (an exec-cert login): the actor is the user.
SELF_SERVICE_PREFIX = "login:"


def _iso(when: dt.datetime | None) -> str | None:
    return when.isoformat(timespec="seconds") if when else None


@functools.lru_cache(maxsize=64)
def _iso_of_epoch(seconds: int) -> str | None:
    """`_iso` of a token's `exp`: tokens issued in the same second share it (a line per token)."""
    return _iso(dt.datetime.fromtimestamp(seconds, dt.UTC))


def certificate_issued(record: CertRecord, actor: str) -> AuditEvent:
    return AuditEvent(
        events.CERT_ISSUE,
        events.OK,
        actor=actor,
        subject=record.common_name,
        ids={"serial": record.serial},
        details={
            "groups": list(record.groups),
            "profile": record.profile,
            "ca": record.ca_name,
            "expiresAt": _iso(record.not_after),
            "requester": record.requester,
        },
    )


def token_issued(token: IssuedToken, kind: str, actor: str) -> AuditEvent:
    from pki.tokens.claims import SOURCE_CLAIM

    claims = token.claims
    details: dict[str, Any] = {"kind": kind, "expiresAt": _iso_of_epoch(claims["exp"])}
    if isinstance(claims.get("groups"), list):
        details["groups"] = claims["groups"]
    source = claims.get(SOURCE_CLAIM)
    if source:
        details["source"] = source
    return AuditEvent(events.TOKEN_ISSUE, events.OK, actor=actor, subject=token.subject, ids={"jti": token.jti},
                      details=details)  # fmt: skip


def certificate_revoked(record: CertRecord, actor: str, comment: str) -> AuditEvent:
    return AuditEvent(
        events.CERT_REVOKE,
        events.OK,
        actor=actor,
        subject=record.common_name,
        reason=comment,
        ids={"serial": record.serial},
        details={"revocationReason": record.revocation_reason, "expiresAt": _iso(record.not_after)},
    )


def token_revoked(token: TokenRecord | None, jti: str, actor: str, reason: str) -> AuditEvent:
    subject = token.subject if token is not None else None
    details = {"kind": token.kind, "expiresAt": _iso(token.expires_at)} if token is not None else {}
    return AuditEvent(events.TOKEN_REVOKE, events.OK, actor=actor, subject=subject, reason=reason, ids={"jti": jti},
                      details=details)  # fmt: skip


def sign_in_ended(sign_in: SignIn, actor: str, reason: str) -> AuditEvent:
    """An OIDC sign-in (a refresh-token family) ended by `access revoke`."""
    details = {"client": sign_in.client_id, "expiresAt": _iso(sign_in.expires_at)}
    return AuditEvent(events.OIDC_SIGN_IN_REVOKE, events.OK, actor=actor, subject=sign_in.username, reason=reason,
                      ids={"family": sign_in.family_id}, details=details)  # fmt: skip


def ban(username: str, actor: str, reason: str, *, restored: bool = False) -> AuditEvent:
    action = events.ACCESS_RESTORE if restored else events.ACCESS_BAN
    return AuditEvent(action, events.OK, actor=actor, subject=username, reason=reason)


def binding_changed(
    action: str, subject: str, binding: str, *, actor: str, role: str, outcome: str = events.OK, reason: str = ""
) -> AuditEvent:
    """A grant written (`grant.create`) or removed (`grant.delete`): `binding` is kind[/namespace]/name."""
    return AuditEvent(action, outcome, actor=actor, subject=subject, reason=reason, ids={"binding": binding},
                      details={"role": role})  # fmt: skip


def record_grant_changes(audit: AuditLog, clock: Clock, changes: Sequence[Change], subject: str, *, actor: str) -> None:
    """A `grant.create` line per binding written by `access grant` or `issue --clusterrole`."""
    for change in changes:
        if not change.action.writes or change.body is None:
            continue
        ref = change.ref
        path = f"{ref.kind.name}/{ref.namespace}/{ref.name}" if ref.namespace else f"{ref.kind.name}/{ref.name}"
        role = f"{change.body.role_ref.kind}/{change.body.role_ref.name}"
        audit.record(clock(), binding_changed(events.GRANT_CREATE, subject, path, actor=actor, role=role))


def csr_decision(
    csr_name: str,
    *,
    outcome: str,
    requester: str,
    subject: str | None,
    reason: str = "",
    actor: str = "csr-signer",
    serial: str | None = None,
    groups: Sequence[str] = (),
    details: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """A CertificateSigningRequest decided: `outcome` is "approved", "denied" or "signed"
    (`serial` then names the certificate); `requester` is the CSR's spec.username."""
    ids = {"csr": csr_name, **({"serial": serial} if serial else {})}
    extra = {"requester": requester, "groups": list(groups), **(details or {})}
    return AuditEvent(events.CSR_DECISION, outcome, actor=actor, subject=subject, reason=reason, ids=ids,
                      details=extra)  # fmt: skip


def actor_of_certificate(record: CertRecord, process_actor: str) -> str:
    """Who asked for a certificate: the user at an exec-cert login, else the command's requester."""
    if record.requester.startswith(SELF_SERVICE_PREFIX):
        return record.common_name
    return record.requester if record.requester.startswith("cli:") else process_actor


def actor_of_token(token: IssuedToken, process_actor: str) -> str:
    """Who asked for a token: the user at a login (its source is the login backend), else the command."""
    from pki.tokens.claims import SOURCE_CLAIM

    source = token.claims.get(SOURCE_CLAIM)
    return token.subject if source and source != "cli" else process_actor
