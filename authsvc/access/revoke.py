"""`authsvc access revoke USER` and `authsvc access restore USER`: take a person's access away
everywhere authsvc can, and give the ban back.

Revoking is planned first (`plan_revocation`): what authsvc knows of the person
(authsvc/access/listing.py), and with a cluster connection the bindings to remove, checked by
the API server as a server-side dry run. Nothing is changed until every check has passed; an
unknown user is refused (NotFound) with nothing changed, and `--dry-run` stops there. Then, in
this order (`revoke`):

1. the ban: nothing is minted for the name any more (certificates, tokens, kubeconfigs,
   logins), and the webhook refuses every token of the name within `tokens.cache_refresh`;
2. every unexpired token authsvc signed for them (user tokens, logins' tokens, service-account
   tokens) on the revocation list, every valid client certificate revoked (privilegeWithdrawn,
   with who and why), their bootstrap tokens deleted (with the Secret), their static tokens
   removed from the webhook's token file;
3. the bindings authsvc manages that name them alone, deleted (kept with the ban, so that
   `access restore` writes them back);
4. their sign-ins on the self-service page and at the OIDC provider (refresh-token families:
   refused at /token and /userinfo on every replica at once), ended.

A second `access revoke` finishes what a first one could not (an API server that went away).
Each step writes its audit line. `restore` lifts the ban and re-creates those bindings;
revoked credentials and ended sign-ins stay so (issue new ones, sign in again).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from authsvc.access import trail
from authsvc.access.bans import Ban
from authsvc.access.bindings import Binding
from authsvc.access.listing import UserAccess, certificate_status, collect, token_status
from authsvc.audit import events
from authsvc.audit.events import AuditEvent
from authsvc.errors import NotFound
from authsvc.oidc.sign_ins import SignIn, end_sign_ins
from pki.inventory import CertRecord
from pki.store import exclusive_lock
from pki.tokens.signing_keys import TokenRecord

if TYPE_CHECKING:
    from authsvc.authn.bootstrap import BootstrapToken
    from authsvc.authn.tokenfile import TokenFileEntry
    from authsvc.cluster.apply import Change
    from authsvc.cluster.connection import ClusterClient
    from authsvc.cluster.grants import Grant
    from authsvc.home.opened import Home

# RFC 5280's reason for a certificate whose holder may no longer use it.
PRIVILEGE_WITHDRAWN = "privilegeWithdrawn"


@dataclass
class RevocationPlan:
    access: UserAccess
    certificates: list[CertRecord] = field(default_factory=list)
    tokens: list[TokenRecord] = field(default_factory=list)
    bootstrap_tokens: list[BootstrapToken] = field(default_factory=list)
    static_tokens: list[TokenFileEntry] = field(default_factory=list)
    sign_ins: list[SignIn] = field(default_factory=list)  # live OIDC sign-ins (refresh-token families)
    remove: list[Binding] = field(default_factory=list)  # authsvc's own bindings of this person alone
    changes: list[Change] = field(default_factory=list)  # their deletion, checked by the API server

    @property
    def user(self) -> str:
        return self.access.user

    @property
    def kept(self) -> list[Binding]:
        """Bindings that name the person and stay: not authsvc's, or shared with others."""
        return [b for b in self.access.bindings or () if b.via == "user" and not b.removable]

    @property
    def via_groups(self) -> list[Binding]:
        return [b for b in self.access.bindings or () if b.via != "user"]


def plan_revocation(home: Home, user: str, client: ClusterClient | None) -> RevocationPlan:
    """What revoking `user` does; NotFound when authsvc knows nothing of them (nothing changes)."""
    access = collect(home, user, client=client)
    if not access.known:
        unsure = "".join(f"; note: {note}" for note in access.notes)
        raise NotFound(
            f"authsvc has no record of user {user!r} (no certificate, token, static token, users-file or "
            "directory entry, kubeconfig or binding): nothing to revoke; `authsvc access list` shows who has access"
            + unsure
        )
    now = access.now
    plan = RevocationPlan(access)
    plan.certificates = [c for c in access.certificates if certificate_status(c, now) == "valid"]
    plan.tokens = [t for t in access.tokens if token_status(t, now) == "valid"]
    plan.bootstrap_tokens = [t for t in access.bootstrap_tokens if not t.expired(now)]
    plan.static_tokens = list(access.static_tokens)
    plan.sign_ins = [s for s in access.oidc_sign_ins if s.status(now) == "valid"]
    plan.remove = [b for b in access.bindings or () if b.removable]
    if client is not None and plan.remove:
        from authsvc.cluster import apply

        plan.changes = apply.plan_delete(client, [b.ref for b in plan.remove])
        apply.check(client, plan.changes)  # the API server's refusal now, before anything changes
    return plan


def revoke(home: Home, plan: RevocationPlan, client: ClusterClient | None, *, actor: str, reason: str) -> bool:
    """Do `plan` (see the module's docstring for the order); False when the user was banned already."""
    audit, now, user = home.stores.audit, home.clock(), plan.user
    grants = [_grant_fields(b.grant(user)) for b in plan.remove]
    banned = home.stores.bans.add(Ban(user, now, actor, reason, tuple(grants)))
    if banned:
        audit.record(now, trail.ban(user, actor, reason))
    else:
        home.stores.bans.add_bindings(user, grants)
    words = f"access revoke by {actor}" + (f": {reason}" if reason else "")
    for token in plan.tokens:
        revoke_token(home, token.jti, actor=actor, reason=reason, record=token, kept_reason=words)
    for cert in plan.certificates:
        revoke_certificate(home, cert.serial, actor=actor, reason=PRIVILEGE_WITHDRAWN, comment=reason)
    _delete_bootstrap_tokens(home, plan, client, actor, reason)
    _remove_static_tokens(home, plan, actor, reason)
    if client is not None and plan.changes:
        from authsvc.cluster import apply

        apply.write(client, plan.changes)
        for binding in plan.remove:
            event = trail.binding_changed(events.GRANT_DELETE, user, binding.path, actor=actor,
                                          role=f"{binding.role_kind}/{binding.role}", reason=reason)  # fmt: skip
            audit.record(home.clock(), event)
    _end_page_sessions(home, user)
    _end_oidc_sign_ins(home, plan, actor, reason, words)
    home.stores.denylist.invalidate()
    return banned


def revoke_token(
    home: Home, jti: str, *, actor: str, reason: str, record: TokenRecord | None = None, kept_reason: str | None = None
) -> bool:
    """Put one token on the revocation list (the webhook refuses it within tokens.cache_refresh)
    and write its audit line: `token revoke`, `access revoke` and the self-service page all come
    here. `kept_reason` is what the inventory keeps (default `reason`). False when it was revoked
    already (nothing changes). Raises StoreError for a jti that cannot be one."""
    service = home.stores.token_service
    if not service.revoke(jti, reason=reason if kept_reason is None else kept_reason, revoked_by=actor):
        return False
    if record is None:
        found = service.store.tokens(jti=jti)
        record = found[0] if found else None
    home.stores.audit.record(home.clock(), trail.token_revoked(record, jti, actor, reason))
    home.stores.denylist.invalidate()
    return True


def revoke_certificate(home: Home, serial: str, *, actor: str, reason: str, comment: str = "") -> CertRecord:
    """Revoke one certificate (RFC 5280 `reason`) and write its audit line: `certs revoke`,
    `access revoke` and the self-service page all come here. Raises NotFoundError/StoreError
    (unknown serial, revoked already, a CA)."""
    record = home.stores.inventory.revoke(serial, reason=reason, now=home.clock(), revoked_by=actor,
                                          comment=comment or None)  # fmt: skip
    home.stores.audit.record(home.clock(), trail.certificate_revoked(record, actor, comment))
    home.stores.denylist.invalidate()
    return record


def _end_page_sessions(home: Home, user: str) -> None:
    """Sign the person out of the self-service page (the ban already refuses their sessions; ended,
    they stay ended after `access restore`)."""
    from authsvc.self_service.sessions import SessionStore

    SessionStore(home.stores.engine, home.clock, home.settings.self_service.session_ttl).end_all(user)


def _end_oidc_sign_ins(home: Home, plan: RevocationPlan, actor: str, reason: str, words: str) -> None:
    """Revoke their OIDC refresh-token families: refused at once (the ban refuses them too, but
    ended, they stay ended after `access restore`)."""
    for sign_in in plan.sign_ins:
        end_sign_in(home, sign_in, actor=actor, reason=reason, kept_reason=words)


def end_sign_in(home: Home, sign_in: SignIn, *, actor: str, reason: str, kept_reason: str | None = None) -> bool:
    """End one OIDC sign-in (its refresh and access tokens refused at once, on every replica) and
    write its audit line: `access revoke` and the self-service page come here. `kept_reason` is
    what the database keeps (default `reason`). False when it was ended already."""
    ended = end_sign_ins(home.stores.engine, [sign_in.family_id], now=home.clock(),
                         reason=reason if kept_reason is None else kept_reason)  # fmt: skip
    if ended:
        home.stores.audit.record(home.clock(), trail.sign_in_ended(sign_in, actor, reason))
    return bool(ended)


def _grant_fields(grant: Grant) -> dict[str, Any]:
    return {
        "subject_kind": grant.subject_kind.value,
        "subject": grant.subject,
        "role_kind": grant.role_kind.value,
        "role": grant.role,
        "namespace": grant.namespace,
    }


def _delete_bootstrap_tokens(
    home: Home, plan: RevocationPlan, client: ClusterClient | None, actor: str, reason: str
) -> None:
    if not plan.bootstrap_tokens:
        return
    from authsvc.authn.bootstrap import BootstrapTokenStore
    from authsvc.cluster.bootstrap_tokens import BootstrapTokens

    tokens = BootstrapTokens(BootstrapTokenStore(home.stores.engine), client)
    for token in plan.bootstrap_tokens:
        tokens.delete(token.token_id, now=home.clock())
        event = AuditEvent(events.BOOTSTRAP_TOKEN_DELETE, events.OK, actor=actor, subject=plan.user, reason=reason,
                           ids={"tokenID": token.token_id})  # fmt: skip
        home.stores.audit.record(home.clock(), event)


def _remove_static_tokens(home: Home, plan: RevocationPlan, actor: str, reason: str) -> None:
    configured = home.settings.authn.tokenfile.path
    if not plan.static_tokens or not configured:
        return
    from authsvc.authn.tokenfile import read_token_file, write_token_file

    path = home.layout.path(configured)
    with exclusive_lock(path):
        current = read_token_file(path)
        write_token_file(path, [e for e in current if e.user != plan.user])
    for entry in plan.static_tokens:
        event = AuditEvent(events.STATIC_TOKEN_REMOVE, events.OK, actor=actor, subject=plan.user, reason=reason,
                           ids={"token": entry.digest.hex()[:12]})  # fmt: skip
        home.stores.audit.record(home.clock(), event)


# --- restore ----------------------------------------------------------------------------------


@dataclass
class RestorePlan:
    ban: Ban
    grants: list[Grant]
    changes: list[Change] = field(default_factory=list)
    connected: bool = False


def plan_restore(home: Home, user: str, client: ClusterClient | None) -> RestorePlan:
    """NotFound when `user`'s access is not revoked; the bindings to write back, checked by the API server."""
    ban = home.stores.bans.get(user)
    if ban is None:
        raise NotFound(f"the access of {user!r} is not revoked: nothing to restore (`authsvc access list {user}`)")
    from authsvc.cluster.grants import Grant, RoleKind, SubjectKind

    grants = [
        Grant(SubjectKind(g["subject_kind"]), g["subject"], RoleKind(g["role_kind"]), g["role"], g.get("namespace"))
        for g in ban.bindings
    ]
    plan = RestorePlan(ban, grants, connected=client is not None)
    if client is not None and grants:
        from authsvc.cluster import apply
        from authsvc.cluster.grants import binding

        plan.changes = apply.plan(client, [binding(g) for g in grants])
        apply.check(client, plan.changes)
    return plan


def restore(home: Home, plan: RestorePlan, client: ClusterClient | None, *, actor: str) -> None:
    """Lift the ban, then write the bindings back (when connected)."""
    user = plan.ban.username
    home.stores.bans.remove(user)
    home.stores.audit.record(home.clock(), trail.ban(user, actor, "", restored=True))
    home.stores.denylist.invalidate()
    if client is None or not plan.changes:
        return
    from authsvc.cluster import apply

    apply.write(client, plan.changes)
    for grant, change in zip(plan.grants, plan.changes, strict=True):
        if change.action.writes:
            path = f"{grant.binding_kind}/{grant.namespace}/{grant.binding_name}" if grant.namespace else (
                f"{grant.binding_kind}/{grant.binding_name}")  # fmt: skip
            event = trail.binding_changed(events.GRANT_CREATE, user, path, actor=actor,
                                          role=f"{grant.role_kind.value}/{grant.role}")  # fmt: skip
            home.stores.audit.record(home.clock(), event)


def grant_command(grant: Grant) -> str:
    """The `authsvc access grant` that writes `grant` (printed when restore cannot write it)."""
    kind = {"User": "--user", "Group": "--group", "ServiceAccount": "--serviceaccount"}[grant.subject_kind.value]
    role = "--clusterrole" if grant.role_kind.value == "ClusterRole" else "--role"
    where = f" -n {grant.namespace}" if grant.namespace else ""
    return f"authsvc access grant {kind} {grant.subject} {role} {grant.role}{where}"
