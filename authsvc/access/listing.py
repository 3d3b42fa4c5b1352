"""Everything authsvc knows of a person's access (`authsvc access list`): the credentials it
issued (certificates, user, service-account and bootstrap tokens, static tokens, kubeconfigs),
their users-file entry and directory entry, their last login, their ban, and, when connected
to a cluster, every binding that names them or one of their groups.

A person is a user name as the API server sees it: `alice`, `system:serviceaccount:ci:deployer`,
`system:bootstrap:abcdef`. Their groups are what their credentials carry (the O= of a
certificate, a static token's, a kubeconfig's, a bootstrap token's) and what the users file and
the directory say now.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from authsvc.access.bans import Ban
from authsvc.access.bindings import SERVICE_ACCOUNT_PREFIX, Binding, bindings_naming, list_bindings
from authsvc.errors import AuthsvcError
from authsvc.oidc.sign_ins import SignIn, sign_ins, signed_in_users
from pki.inventory import CertRecord, CertStatus
from pki.profiles import CLIENT, KUBELET_CLIENT
from pki.tokens.signing_keys import TokenRecord

if TYPE_CHECKING:
    from authsvc.authn.bootstrap import BootstrapToken
    from authsvc.authn.tokenfile import TokenFileEntry
    from authsvc.cluster.connection import ClusterClient
    from authsvc.home.opened import Home
    from authsvc.kubeconfig.issuer import IssuedCredential
    from authsvc.login.users_file import StaticUser

# Certificates that authenticate someone to the API server (server and CA certificates do not).
CLIENT_PROFILES = (CLIENT.name, KUBELET_CLIENT.name)
BOOTSTRAP_PREFIX = "system:bootstrap:"
# A certificate requested at /login (`authsvc login --credential certificate`): "login:<backend>".
LOGIN_REQUESTER = "login:"
CLI_SOURCE = "cli"


@dataclass(frozen=True, slots=True)
class LastLogin:
    at: dt.datetime
    backend: str


@dataclass
class UserAccess:
    user: str
    now: dt.datetime
    ban: Ban | None = None
    certificates: list[CertRecord] = field(default_factory=list)
    tokens: list[TokenRecord] = field(default_factory=list)
    bootstrap_tokens: list[BootstrapToken] = field(default_factory=list)
    static_tokens: list[TokenFileEntry] = field(default_factory=list)
    users_file: StaticUser | None = None
    directory_groups: tuple[str, ...] | None = None  # None: not in the directory (or none configured)
    kubeconfigs: list[IssuedCredential] = field(default_factory=list)
    # Sign-ins at the OIDC provider (refresh-token families), authsvc/oidc/sign_ins.py.
    oidc_sign_ins: list[SignIn] = field(default_factory=list)
    last_login: LastLogin | None = None
    # None: not connected to a cluster (bindings unknown).
    bindings: list[Binding] | None = None
    cluster: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def groups(self) -> tuple[str, ...]:
        """Every group the person's credentials carry or their entries name, sorted."""
        groups: set[str] = set(self.directory_groups or ())
        groups.update(g for c in self.certificates if c.status is CertStatus.VALID for g in c.groups)
        groups.update(g for t in self.static_tokens for g in t.groups)
        groups.update(g for b in self.bootstrap_tokens for g in ("system:bootstrappers", *b.groups))
        groups.update(g for k in self.kubeconfigs for g in k.groups)
        if self.users_file is not None:
            groups.update(self.users_file.groups)
        if self.user.startswith(SERVICE_ACCOUNT_PREFIX):
            namespace = self.user[len(SERVICE_ACCOUNT_PREFIX) :].partition(":")[0]
            groups.update(("system:serviceaccounts", f"system:serviceaccounts:{namespace}"))
        return tuple(sorted(groups))

    @property
    def known(self) -> bool:
        """Whether authsvc has any record of this person (a credential, an entry, a binding, a ban)."""
        return bool(
            self.ban
            or self.certificates
            or self.tokens
            or self.bootstrap_tokens
            or self.static_tokens
            or self.users_file
            or self.directory_groups is not None
            or self.kubeconfigs
            or self.oidc_sign_ins
            or self.bindings
        )

    def as_dict(self) -> dict[str, Any]:
        now = self.now
        return {
            "user": self.user,
            "revoked": self.ban.as_dict() if self.ban else None,
            "groups": list(self.groups),
            "certificates": [_certificate(c, now) for c in self.certificates],
            "tokens": [_token(t, now) for t in self.tokens],
            "bootstrapTokens": [b.as_dict(now) for b in self.bootstrap_tokens],
            "staticTokens": [t.public() for t in self.static_tokens],
            "usersFile": self.users_file.public() if self.users_file else None,
            "directory": {"groups": list(self.directory_groups)} if self.directory_groups is not None else None,
            "kubeconfigs": [_kubeconfig(k) for k in self.kubeconfigs],
            "oidcSignIns": [_sign_in(s, now) for s in self.oidc_sign_ins],
            "lastLogin": _last_login(self.last_login),
            "cluster": self.cluster,
            "bindings": [b.as_dict() for b in self.bindings] if self.bindings is not None else None,
            "notes": list(self.notes),
        }


def _iso(when: dt.datetime | None) -> str | None:
    return when.isoformat(timespec="seconds") if when else None


def certificate_status(record: CertRecord, now: dt.datetime) -> str:
    if record.status is CertStatus.VALID and record.not_after <= now:
        return "expired"
    return record.status.value


def _certificate(record: CertRecord, now: dt.datetime) -> dict[str, Any]:
    return {
        "serial": record.serial,
        "status": certificate_status(record, now),
        "notAfter": _iso(record.not_after),
        "groups": list(record.groups),
        "profile": record.profile,
        "requester": record.requester,
        "revokedAt": _iso(record.revoked_at),
        "revokedBy": record.revoked_by,
        "revocationReason": record.revocation_reason,
        "revocationComment": record.revocation_comment,
    }


def token_status(record: TokenRecord, now: dt.datetime) -> str:
    if record.revoked_at is not None:
        return "revoked"
    return "expired" if record.expires_at <= now else "valid"


def _token(record: TokenRecord, now: dt.datetime) -> dict[str, Any]:
    return {
        "jti": record.jti,
        "kind": record.kind,
        "source": record.source,
        "status": token_status(record, now),
        "expiresAt": _iso(record.expires_at),
        "revokedAt": _iso(record.revoked_at),
        "revokedBy": record.revoked_by,
        "revocationReason": record.revocation_reason,
    }


def _sign_in(sign_in: SignIn, now: dt.datetime) -> dict[str, Any]:
    return {
        "id": sign_in.family_id,
        "client": sign_in.client_id,
        "source": sign_in.source,
        "status": sign_in.status(now),
        "signedInAt": _iso(sign_in.signed_in_at),
        "expiresAt": _iso(sign_in.expires_at),
        "revokedAt": _iso(sign_in.revoked_at),
        "revocationReason": sign_in.revoked_reason or None,
    }


def _kubeconfig(credential: IssuedCredential) -> dict[str, Any]:
    return {
        "mode": credential.mode.value,
        "issuedAt": _iso(credential.issued_at),
        "expiresAt": _iso(credential.expires_at),
        "serial": credential.serial,
        "tokenID": credential.token_jti,
        "requester": credential.requester,
    }


def _last_login(login: LastLogin | None) -> dict[str, Any] | None:
    return {"at": _iso(login.at), "backend": login.backend} if login else None


# --- collecting --------------------------------------------------------------------------------


def collect(
    home: Home,
    user: str,
    *,
    client: ClusterClient | None = None,
    include_expired: bool = False,
    directory: bool = True,
) -> UserAccess:
    """Everything about `user`; the cluster's bindings when `client` is given; the directory's
    groups when `directory` and ldap is enabled (a directory that cannot answer is a note)."""
    now = home.clock()
    valid_at = None if include_expired else now
    access = UserAccess(user, now, ban=home.stores.bans.get(user))
    access.certificates = [
        c
        for c in home.stores.inventory.certificates(common_name=user, valid_at=valid_at)
        if c.profile in CLIENT_PROFILES
    ]
    access.tokens = home.stores.token_service.tokens(include_expired=include_expired, subject=user)
    access.bootstrap_tokens = _bootstrap_tokens(home, user, now, include_expired)
    access.static_tokens = [e for e in _static_tokens(home, access.notes) if e.user == user]
    access.users_file = _users_file(home, access.notes).get(user)
    access.kubeconfigs = _kubeconfigs(home, user)
    access.oidc_sign_ins = sign_ins(home.stores.engine, user, now=now, include_ended=include_expired)
    access.last_login = last_login(home, user)
    if directory:
        access.directory_groups = _directory_groups(home, user, access.notes)
    if client is not None:
        access.cluster = client.server
        access.bindings = bindings_naming(client, user, access.groups)
    return access


def last_login(home: Home, user: str) -> LastLogin | None:
    """The latest credential /login issued to `user`: a token whose source is a login backend,
    or a certificate requested as `login:<backend>` (what the inventory keeps of a login)."""
    logins = [
        LastLogin(t.issued_at, t.source)
        for t in home.stores.token_service.tokens(include_expired=True, subject=user)
        if t.source and t.source != CLI_SOURCE and t.kind == "user"
    ]
    logins += [
        LastLogin(c.issued_at, c.requester[len(LOGIN_REQUESTER) :])
        for c in home.stores.inventory.certificates(common_name=user)
        if c.requester.startswith(LOGIN_REQUESTER)
    ]
    return max(logins, key=lambda login: login.at, default=None)


def _bootstrap_tokens(home: Home, user: str, now: dt.datetime, include_expired: bool) -> list[BootstrapToken]:
    if not user.startswith(BOOTSTRAP_PREFIX):
        return []
    from authsvc.authn.bootstrap import BootstrapTokenStore

    token_id = user[len(BOOTSTRAP_PREFIX) :]
    tokens = BootstrapTokenStore(home.stores.engine).tokens()
    return [t for t in tokens if t.token_id == token_id and (include_expired or not t.expired(now))]


def _static_tokens(home: Home, notes: list[str]) -> list[TokenFileEntry]:
    configured = home.settings.authn.tokenfile.path
    if not configured:
        return []
    from authsvc.authn.tokenfile import read_token_file

    try:
        return read_token_file(home.layout.path(configured))
    except (AuthsvcError, OSError) as e:
        notes.append(f"the token file cannot be read: {e}")
        return []


def _users_file(home: Home, notes: list[str]) -> dict[str, StaticUser]:
    if "users" not in home.settings.login.backends:
        return {}
    from authsvc.login.users_file import read_users

    try:
        return {u.username: u for u in read_users(home.layout.path(home.settings.login.users_file))}
    except (AuthsvcError, OSError) as e:
        notes.append(f"the users file cannot be read: {e}")
        return {}


def _kubeconfigs(home: Home, user: str | None) -> list[IssuedCredential]:
    from authsvc.kubeconfig.issuer import CredentialInventory

    return CredentialInventory(home.stores.engine).credentials(username=user)


def _directory_groups(home: Home, user: str, notes: list[str]) -> tuple[str, ...] | None:
    settings = home.settings.ldap
    if not settings.enabled or user.startswith("system:"):
        return None
    from authsvc.ldap.service import LDAPService

    service = LDAPService.from_settings(settings, home_root=home.root, environ=home.secrets.environ, clock=home.clock)
    try:
        identity = service.lookup(user)
    except AuthsvcError as e:
        notes.append(f"the directory cannot answer ({e}): its groups are not known")
        return None
    finally:
        service.close()
    if identity is None:
        return None
    if identity.inactive:
        notes.append(f"the directory account cannot be used now: {identity.inactive}")
    return identity.groups


# --- everyone ------------------------------------------------------------------------------------


def known_users(home: Home, *, include_expired: bool = False) -> list[str]:
    """Every user name authsvc holds a credential, an entry or a ban for, sorted."""
    now = home.clock()
    valid_at = None if include_expired else now
    names: set[str] = {c.common_name for c in home.stores.inventory.certificates(valid_at=valid_at)
                       if c.profile in CLIENT_PROFILES}  # fmt: skip
    names.update(t.subject for t in home.stores.token_service.tokens(include_expired=include_expired))
    from authsvc.authn.bootstrap import BootstrapTokenStore

    names.update(
        BOOTSTRAP_PREFIX + t.token_id
        for t in BootstrapTokenStore(home.stores.engine).tokens()
        if include_expired or not t.expired(now)
    )
    ignored: list[str] = []
    names.update(e.user for e in _static_tokens(home, ignored))
    names.update(_users_file(home, ignored))
    names.update(k.username for k in _kubeconfigs(home, None))
    names.update(b.username for b in home.stores.bans.bans())
    names.update(signed_in_users(home.stores.engine, now=now))
    return sorted(names)


def collect_everyone(
    home: Home, *, client: ClusterClient | None = None, include_expired: bool = False
) -> list[UserAccess]:
    """`collect` for every known user, without asking the directory (one query per person would
    be slow; `access list USER` asks it): groups are those their credentials carry."""
    everyone = [collect(home, user, include_expired=include_expired, directory=False) for user in known_users(home)]
    if client is not None:
        _attach_bindings(client, everyone)
    return everyone


def _attach_bindings(client: ClusterClient, everyone: Sequence[UserAccess]) -> None:
    listed = list_bindings(client)  # once for everyone
    for access in everyone:
        access.cluster = client.server
        access.bindings = bindings_naming(None, access.user, access.groups, listed=listed)
