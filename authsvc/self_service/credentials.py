"""The credentials a signed-in person holds, as `authsvc access list USER` collects them, and
the revocation of one of their own through the functions `token revoke` and `certs revoke` use
(authsvc/access/revoke.py): same inventory rows, same audit lines, the actor
`self-service:<user>`.

A person may revoke their own unexpired user tokens and client certificates, and end their own
sign-ins at the OIDC provider (a lost laptop's refresh token); everything else (service-account
and bootstrap tokens, static tokens, bans, bindings) stays an admin's.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from authsvc.access.listing import LOGIN_REQUESTER, certificate_status, collect, token_status
from authsvc.access.revoke import end_sign_in, revoke_certificate, revoke_token
from authsvc.errors import NotFound
from authsvc.oidc.sign_ins import SignIn, sign_ins
from authsvc.self_service.kubeconfigs import REQUESTER_PREFIX
from pki.tokens.claims import KIND_ID_TOKEN, KIND_USER

if TYPE_CHECKING:
    from authsvc.home.opened import Home
    from authsvc.kubeconfig.issuer import IssuedCredential

TOKEN, CERTIFICATE, SIGN_IN = "token", "certificate", "sign-in"
KINDS = (TOKEN, CERTIFICATE, SIGN_IN)
# Token kinds a person holds for themselves (service-account tokens belong to workloads).
PERSONAL_TOKEN_KINDS = (KIND_USER, KIND_ID_TOKEN)
_KIND_WORDS = {KIND_USER: "token", KIND_ID_TOKEN: "ID token"}
# RFC 5280: the holder no longer needs it.
HOLDER_REASON = "cessationOfOperation"
REVOKED_BY_HOLDER = "revoked by its holder on the self-service page"


@dataclass(frozen=True, slots=True)
class HeldCredential:
    """One row of the page's list."""

    kind: str  # TOKEN, CERTIFICATE or SIGN_IN
    ident: str  # the token's jti, the certificate's serial, the sign-in's family id
    what: str  # in words: "token from a login (ldap)", "client certificate (dev) from an admin"
    status: str  # valid, expired, revoked
    expires_at: dt.datetime
    # What revoking it does, where that is not simply "refused from now on".
    after_revoke: str = ""

    @property
    def revocable(self) -> bool:
        return self.status == "valid"


@dataclass
class Holdings:
    credentials: list[HeldCredential] = field(default_factory=list)
    kubeconfigs: list[IssuedCredential] = field(default_factory=list)


def holdings(home: Home, username: str) -> Holdings:
    """The person's unexpired tokens and certificates and their kubeconfigs (no directory query:
    the page has the groups of the sign-in)."""
    access = collect(home, username, directory=False)
    now = access.now
    held = Holdings(kubeconfigs=list(reversed(access.kubeconfigs)))
    in_kubeconfigs = {k.token_jti: k for k in access.kubeconfigs if k.token_jti}
    for token in access.tokens:
        if token.kind in PERSONAL_TOKEN_KINDS:
            kubeconfig = in_kubeconfigs.get(token.jti)
            if kubeconfig is not None:
                what = f"token of a kubeconfig from {_requester_words(kubeconfig.requester)}"
            else:
                what = f"{_KIND_WORDS[token.kind]} from {_source_words(token.source)}"
            held.credentials.append(HeldCredential(TOKEN, token.jti, what, token_status(token, now), token.expires_at))
    for cert in access.certificates:
        groups = ", ".join(cert.groups) or "no groups"
        origin = "a login" if cert.requester.startswith(LOGIN_REQUESTER) else "an admin"
        after = (
            "authsvc and its proxy refuse it at once; kube-apiserver never checks revocation and accepts it "
            f"until it expires ({cert.not_after:%Y-%m-%d %H:%M} UTC): if it was stolen, tell an admin"
        )
        held.credentials.append(HeldCredential(CERTIFICATE, cert.serial, f"client certificate ({groups}) from {origin}",
                                               certificate_status(cert, now), cert.not_after, after))  # fmt: skip
    held.credentials += [_held_sign_in(sign_in, now) for sign_in in access.oidc_sign_ins]
    held.credentials.sort(key=lambda c: c.expires_at, reverse=True)
    return held


def _held_sign_in(sign_in: SignIn, now: dt.datetime) -> HeldCredential:
    after = (
        "its refresh token stops at once, on every replica; an ID token it already gave is a token "
        "above (revoke it too), and an API server that verifies ID tokens itself accepts it until it expires"
    )
    what = f"sign-in at the OIDC provider ({sign_in.client_id})"
    return HeldCredential(SIGN_IN, sign_in.family_id, what, sign_in.status(now), sign_in.expires_at, after)


def _source_words(source: str) -> str:
    """Where a token not in any kubeconfig came from: an admin's command or a login."""
    return "an admin (authsvc token create)" if source == "cli" else f"a login ({source})"


def _requester_words(requester: str) -> str:
    return "this page" if requester.startswith(REQUESTER_PREFIX) else f"an admin ({requester or 'authsvc issue'})"


def revoke_own(home: Home, username: str, kind: str, ident: str) -> HeldCredential:
    """Revoke `username`'s own valid token or certificate `ident`, or end their sign-in `ident`.
    NotFound when it is not theirs, not valid, or unknown (nothing changes: the page never
    reveals which)."""
    actor = REQUESTER_PREFIX + username
    if kind == SIGN_IN:  # their live sign-ins are one query; the rest of their holdings is not needed
        now = home.clock()
        sign_in = next((s for s in sign_ins(home.stores.engine, username, now=now) if s.family_id == ident), None)
        if sign_in is None or not end_sign_in(home, sign_in, actor=actor, reason=REVOKED_BY_HOLDER):
            raise NotFound("no such valid credential of yours")
        return _held_sign_in(sign_in, now)
    held = next(
        (c for c in holdings(home, username).credentials if c.kind == kind and c.ident == ident and c.revocable), None
    )
    if held is None:
        raise NotFound("no such valid credential of yours")
    if kind == TOKEN:
        revoke_token(home, ident, actor=actor, reason=REVOKED_BY_HOLDER)
    else:
        revoke_certificate(home, ident, actor=actor, reason=HOLDER_REASON, comment=REVOKED_BY_HOLDER)
    return held
