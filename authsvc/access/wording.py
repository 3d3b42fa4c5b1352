"""When each credential of a revoked person stops working, in plain words.

Revocation means something different for each kind of credential, because the API server
checks each differently: it never reads a CRL (kubernetes#18982), so a client certificate works
until it expires and only RBAC can take its rights away; it verifies service-account tokens
itself; it asks the webhook about the rest, and caches the answers. Each line says which case
applies, with the time or the delay, and what is left to do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from authsvc.access.bindings import Binding
from authsvc.access.listing import LOGIN_REQUESTER
from pki.durations import format_duration
from pki.tokens.claims import KIND_ID_TOKEN, KIND_LEGACY, KIND_SERVICE_ACCOUNT

if TYPE_CHECKING:
    from authsvc.access.revoke import RevocationPlan
    from authsvc.settings import Settings

# kube-apiserver caches successful token authentications for 10 s whatever its flags say
# (TokenSuccessCacheTTL in k8s.io/kubernetes pkg/kubeapiserver/options/authentication.go).
APISERVER_SUCCESS_CACHE = "10 s"


@dataclass(frozen=True, slots=True)
class Line:
    kind: str  # what the credential or object is
    ident: str  # its id (a serial, a token id, a binding's name)
    text: str  # when it stops working, and what is left to do
    until: dt.datetime | None = None  # when it stops working at the latest, if it still works until then

    def render(self) -> str:
        return f"{self.kind} {self.ident}: {self.text}" if self.ident else f"{self.kind}: {self.text}"

    def as_dict(self) -> dict[str, Any]:
        until = self.until.isoformat(timespec="seconds") if self.until else None
        return {"kind": self.kind, "id": self.ident, "worksUntil": until, "text": self.text}


def _at(when: dt.datetime) -> str:
    return f"{when:%Y-%m-%dT%H:%MZ}"


def _short(ident: str) -> str:
    return ident if len(ident) <= 12 else ident[:8] + "…"


def report(plan: RevocationPlan, settings: Settings, *, connected: bool) -> list[Line]:
    """One line per credential and binding of `plan`, in the order of the revocation."""
    user = plan.user
    lines = [Line("ban", "", f"nothing new for {user} (certificate, token, kubeconfig, login) until "
                             f"`authsvc access restore {user}`")]  # fmt: skip
    refresh = format_duration(settings.tokens.cache_refresh)
    webhook_delay = (
        f"the webhook refuses it within {refresh} (tokens.cache_refresh); the API server once its own cache lets "
        f"go of it (--authentication-token-webhook-cache-ttl, and up to {APISERVER_SUCCESS_CACHE} for a success "
        "whatever that flag says)"
    )
    lines += [_token_line(t.jti, t.kind, t.expires_at, settings, webhook_delay) for t in plan.tokens]
    lines += [_certificate_line(c.serial, c.not_after, c.requester, c.groups, plan, settings, connected=connected)
              for c in plan.certificates]  # fmt: skip
    for token in plan.bootstrap_tokens:
        where = "the database and its Secret" if connected else "the database (not connected: a Secret stays)"
        lines.append(Line("bootstrap token", token.token_id, f"deleted from {where}; {webhook_delay}"))
    for entry in plan.static_tokens:
        text = f"removed from the token file; {webhook_delay} (kube-apiserver's own --token-auth-file is not changed)"
        lines.append(Line("static token", entry.digest.hex()[:12], text))
    access = plan.access
    if access.users_file is not None:
        lines.append(Line("users-file entry", user, "kept; its logins are refused while the access is revoked "
                                                   f"(`authsvc users remove {user}` deletes it)"))  # fmt: skip
    if access.directory_groups is not None:
        lines.append(Line("directory account", user, "untouched; its logins are refused while the access is revoked"))
    for kubeconfig in access.kubeconfigs:
        if kubeconfig.mode.value.startswith("exec"):
            lines.append(Line(f"{kubeconfig.mode.value} kubeconfig", f"of {kubeconfig.issued_at:%Y-%m-%d}",
                              "its logins are refused while the access is revoked"))  # fmt: skip
    for sign_in in plan.sign_ins:
        text = (
            "ended: its refresh token is refused at /token and its access tokens at /userinfo, on every "
            f"replica at once (client {sign_in.client_id}); it stays ended after `authsvc access restore`"
        )
        lines.append(Line("OIDC sign-in", _short(sign_in.family_id), text))
    lines += _binding_lines(plan, connected=connected)
    return lines


def _token_line(jti: str, kind: str, expires: dt.datetime, settings: Settings, webhook_delay: str) -> Line:
    if kind == KIND_ID_TOKEN:
        text = (
            "recorded as revoked; kube-apiserver verifies ID tokens itself (--oidc-*) and never asks authsvc: "
            f"it stays valid there until {_at(expires)}; its refresh is refused from now on (the ban)"
        )
        return Line("ID token", jti, text, expires)
    if kind in (KIND_SERVICE_ACCOUNT, KIND_LEGACY):
        text = (
            "revoked; kube-apiserver verifies service-account tokens itself (sa.pub) and never asks authsvc "
            f"about them: it stays valid until {_at(expires)}; delete the service account to end it now"
        )
        return Line("service-account token", jti, text, expires)
    if settings.tokens.user_issuer:
        text = (
            f"revoked; an API server that verifies user tokens itself (tokens.user_issuer) does not ask authsvc: "
            f"there it stays valid until {_at(expires)}; through the webhook, {webhook_delay}"
        )
        return Line("token", jti, text, expires)
    return Line("token", jti, f"revoked; {webhook_delay}")


def _certificate_line(
    serial: str,
    not_after: dt.datetime,
    requester: str,
    groups: Sequence[str],
    plan: RevocationPlan,
    settings: Settings,
    *,
    connected: bool,
) -> Line:
    if requester.startswith(LOGIN_REQUESTER):
        text = (f"short-lived, from a login: stops working at {_at(not_after)} (its end of life, at most "
                f"login.certificate_ttl {format_duration(settings.login.certificate_ttl)}); no new one: "
                "the logins are refused")  # fmt: skip
        return Line("client certificate", _short(serial), text, not_after)
    rights = _remaining_rights(plan, groups, connected=connected)
    text = f"the API server does not check revocation; it stays valid until {_at(not_after)} {rights}"
    return Line("client certificate", _short(serial), text, not_after)


def _remaining_rights(plan: RevocationPlan, groups: Sequence[str], *, connected: bool) -> str:
    if not connected:
        return (
            "unless its bindings are removed (not checked: no cluster connection; run again with --kubeconfig, "
            "or remove every RoleBinding and ClusterRoleBinding naming the user yourself)"
        )
    parts = [f"done: {len(plan.remove)} removed"]
    if plan.kept:
        parts.append(f"{len(plan.kept)} not managed by authsvc still name {plan.user}: remove them yourself")
    group_bindings = [b for b in plan.via_groups if b.via.partition(":")[2] in groups]
    if group_bindings:
        names = ", ".join(sorted({b.via.partition(":")[2] for b in group_bindings}))
        parts.append(f"its group {names} keeps {len(group_bindings)} binding(s) until it expires")
    return f"unless its bindings are removed ({'; '.join(parts)})"


def _binding_lines(plan: RevocationPlan, *, connected: bool) -> list[Line]:
    if not connected:
        return [Line("bindings", "", "not checked: no cluster connection (--kubeconfig or cluster.api.kubeconfig)")]
    lines = [Line(b.kind, _where(b), "removed (managed by authsvc; `access restore` writes it back)")
             for b in plan.remove]  # fmt: skip
    lines += [Line(b.kind, _where(b), f"{_why_kept(b)}: left in place; `{b.kubectl_delete()}` removes it")
              for b in plan.kept]  # fmt: skip
    for b in plan.via_groups:
        group = b.via.partition(":")[2]
        text = f"names group {group}, not {plan.user}: left in place (a certificate in it keeps its rights)"
        lines.append(Line(b.kind, _where(b), text))
    return lines


def _why_kept(binding: Binding) -> str:
    return "shared with other subjects" if binding.managed else "not managed by authsvc"


def _where(binding: Binding) -> str:
    return f"{binding.namespace}/{binding.name}" if binding.namespace else binding.name
