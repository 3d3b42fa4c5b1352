"""Issuing kubeconfigs: a credential for a user in one of four modes, recorded in the inventory.

- cert: a key made here and a client certificate (CN = user, O = groups) under the signing policy;
- own CSR: the user's CSR signed under the same policy, the key stays with the user (`client-key: PATH`);
- token: an authsvc-signed user token that authsvc can revoke (its jti is recorded);
- exec: `authsvc login` as a client-go exec credential plugin (nothing issued now: tokens come at login);
- exec-cert: the same plugin with short-lived client certificates (`login.certificate_ttl`) for a key
  the plugin makes, signed at each login: what the API server cannot revoke ends with its life.

Every issued kubeconfig gets a row in `issued_credentials` (who, when, groups, expiry, mode,
serial or token jti, requester). This module builds data; the CLI decides where it is written.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.parse
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from sqlalchemy import Engine, Row, insert, select

from authsvc.db.tables import ISSUED_CREDENTIALS
from authsvc.errors import ConfigError, UsageError
from authsvc.kubeconfig.documents import (
    ClusterEntry,
    UserEntry,
    browser_exec_config,
    build_kubeconfig,
    exec_user_config,
)
from pki.csr import load_csr
from pki.issuance import CertificateIssuer
from pki.issued_by import issued_by
from pki.names import check_name, subject_user
from pki.policy import check_groups, check_user
from pki.profiles import CLIENT
from pki.store import certs_to_pem, load_certificates

if TYPE_CHECKING:
    from authsvc.home.opened import Home

# Kubernetes namespaces are DNS-1123 labels.
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_URL_FORBIDDEN = re.compile(r"[\x00-\x20\x7f]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
INSTALL_HINT = (
    "This kubeconfig logs you in with `authsvc login` (your directory user name and password): "
    "install authsvc (`pip install authsvc`, or ask your cluster administrator for the package) "
    "so that the `authsvc` command is on your PATH."
)


class IssueMode(StrEnum):
    CERT = "cert"
    TOKEN = "token"
    EXEC = "exec"
    EXEC_CERT = "exec-cert"

    @property
    def exec_plugin(self) -> bool:
        """Modes whose credential comes from `authsvc login` at use, not now."""
        return self in (IssueMode.EXEC, IssueMode.EXEC_CERT)


# --- the inventory of issued kubeconfig credentials -------------------------------------------


@dataclass(frozen=True, slots=True)
class IssuedCredential:
    id: int
    username: str
    groups: tuple[str, ...]
    mode: IssueMode
    cluster: str
    issued_at: dt.datetime
    expires_at: dt.datetime | None
    serial: str | None
    token_jti: str | None
    requester: str

    @classmethod
    def from_row(cls, row: Row[Any]) -> IssuedCredential:
        return cls(
            id=row.id,
            username=row.username,
            groups=tuple(json.loads(row.groups_json)),
            mode=IssueMode(row.mode),
            cluster=row.cluster,
            issued_at=row.issued_at,
            expires_at=row.expires_at,
            serial=row.serial,
            token_jti=row.token_jti,
            requester=row.requester,
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "user": self.username,
            "groups": list(self.groups),
            "mode": self.mode.value,
            "cluster": self.cluster,
            "issuedAt": self.issued_at.isoformat(),
            "expiresAt": self.expires_at.isoformat() if self.expires_at else None,
            "serial": self.serial,
            "tokenID": self.token_jti,
            "requester": self.requester,
        }


class CredentialInventory:
    """The `issued_credentials` table; every method is one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, credential: PendingCredential, *, now: dt.datetime) -> IssuedCredential:
        row = (
            insert(ISSUED_CREDENTIALS)
            .values(
                username=credential.user,
                groups_json=json.dumps(list(credential.groups)),
                mode=credential.mode.value,
                cluster=credential.cluster,
                issued_at=now,
                expires_at=credential.expires_at,
                serial=credential.serial,
                token_jti=credential.token_jti,
                requester=credential.requester,
            )
            .returning(*ISSUED_CREDENTIALS.c)
        )
        with self.engine.begin() as connection:
            return IssuedCredential.from_row(connection.execute(row).one())

    def credentials(self, *, username: str | None = None) -> list[IssuedCredential]:
        query = select(ISSUED_CREDENTIALS).order_by(ISSUED_CREDENTIALS.c.id)
        if username is not None:
            query = query.where(ISSUED_CREDENTIALS.c.username == username)
        with self.engine.connect() as connection:
            return [IssuedCredential.from_row(r) for r in connection.execute(query)]


# --- requests and results -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IssueRequest:
    """What `authsvc issue` was asked for; None means "the default from authsvc.yaml"."""

    user: str
    groups: tuple[str, ...] = ()
    mode: IssueMode = IssueMode.CERT
    ttl: dt.timedelta | None = None
    cluster: str | None = None
    server: str | None = None
    namespace: str | None = None
    csr_pem: bytes | None = None
    key_path: str | None = None
    requester: str = ""
    # Exec mode: sign in with the browser (OIDC code flow) as this client instead of a password.
    browser: bool = False
    client_id: str | None = None
    # The URL of `authsvc proxy`: the kubeconfig points there (with the proxy's CA) instead of
    # at the API server.
    via_proxy: str | None = None
    # The CA bundle (PEM) kubectl trusts the server with; None: the home's cluster CA.
    ca_pem: bytes | None = None
    # Token mode: the login backend that vouched for the user (the webhook re-checks the user
    # there, as for /login's tokens) and its uid; "cli" when an admin names the user.
    source: str = "cli"
    uid: str = ""


@dataclass(frozen=True, slots=True)
class PendingCredential:
    """A credential made for a request, before it is recorded."""

    user: str
    groups: tuple[str, ...]
    mode: IssueMode
    cluster: str
    user_entry: UserEntry
    expires_at: dt.datetime | None = None
    serial: str | None = None
    token_jti: str | None = None
    requester: str = ""


@dataclass(frozen=True, slots=True)
class IssuedKubeconfig:
    config: dict[str, Any]
    context: str
    credential: IssuedCredential
    # Things the operator should know (e.g. the login CA could not be found and is left out).
    notes: tuple[str, ...] = field(default=())


# --- validation -------------------------------------------------------------------------------


def check_server_url(url: str, *, source: str) -> str:
    """An https:// URL with a host: the only kind a kubeconfig should send credentials to."""
    parsed = urllib.parse.urlsplit(url)
    try:
        port_ok = parsed.port is None or parsed.port > 0
    except ValueError:
        port_ok = False
    if parsed.scheme != "https" or not parsed.hostname or not port_ok or _URL_FORBIDDEN.search(url):
        raise UsageError(f"{source} {url!r} is not an https:// URL with a host (e.g. https://10.0.0.1:6443)")
    return url


def check_namespace(namespace: str) -> str:
    check_name(namespace, what="namespace")
    if not _NAMESPACE.fullmatch(namespace):
        raise UsageError(f"namespace {namespace!r} is not a DNS-1123 label (lower-case letters, digits and '-')")
    return namespace


def check_mode_options(request: IssueRequest) -> None:
    """Option combinations that make no sense for a mode are refused, not ignored."""
    if request.csr_pem is not None and request.mode is not IssueMode.CERT:
        raise UsageError(f"--csr signs a certificate: it cannot be used with --mode {request.mode}")
    if (request.csr_pem is None) != (request.key_path is None):
        raise UsageError("--csr and --key-path go together: --key-path is where the user keeps the CSR's key")
    if request.mode.exec_plugin and (request.groups or request.ttl is not None):
        raise UsageError(
            f"--mode {request.mode} issues no credential now: groups come from the directory at login, lifetimes "
            "from login.token_ttl or login.certificate_ttl"
        )
    if (request.browser or request.client_id is not None) and request.mode is not IssueMode.EXEC:
        raise UsageError("--browser and --client-id go with --mode exec (kubectl then signs in with the browser)")
    if request.client_id is not None and not request.browser:
        raise UsageError("--client-id goes with --browser")
    if request.key_path is not None:
        check_key_path(request.key_path)


def check_key_path(key_path: str) -> None:
    """The path is written as given; kubectl resolves it relative to the kubeconfig's folder."""
    if not key_path.strip() or _CONTROL.search(key_path):
        raise UsageError(f"--key-path {key_path!r} is empty or contains a control character")
    if key_path.startswith("~"):
        raise UsageError(
            f"--key-path {key_path!r}: kubectl does not expand ~; give the key's absolute path on the user's machine"
        )


def check_csr_subject(csr_pem: bytes, user: str, groups: tuple[str, ...]) -> None:
    """The CSR must ask for exactly the identity the operator named on the command line."""
    cn, csr_groups = subject_user(load_csr(csr_pem).subject)
    if cn != user:
        raise UsageError(f"the CSR is for CN {cn!r}, not {user!r}: the user must make the CSR with CN={user}")
    if sorted(set(csr_groups)) != sorted(set(groups)):
        asked, given = ",".join(csr_groups) or "(none)", ",".join(groups) or "(none)"
        raise UsageError(f"the CSR asks for groups {asked} but --group gave {given}: they must be the same")


# --- the service ------------------------------------------------------------------------------


class KubeconfigIssuer:
    """Issues kubeconfigs for one home (its settings, CA, policy, token service and inventory)."""

    def __init__(self, home: Home, credentials: CredentialInventory | None = None) -> None:
        self.home = home
        self.settings = home.settings
        self.credentials = credentials or CredentialInventory(home.stores.engine)

    def check(self, request: IssueRequest) -> None:
        """Everything that can be refused before anything is issued or written."""
        policy = self.settings.pki.policy.to_policy()
        check_mode_options(request)
        check_user(policy, request.user)
        check_groups(policy, request.groups)
        check_name(self.cluster_name(request), what="cluster name")
        check_server_url(request.server or self.settings.cluster.server, source=self._server_source(request))
        if request.via_proxy is not None:
            if request.server is not None:
                raise UsageError("--server and --via-proxy both name where kubectl connects: choose one")
            check_server_url(request.via_proxy, source="--via-proxy")
        if request.namespace is not None:
            check_namespace(request.namespace)
        if request.csr_pem is not None:
            check_csr_subject(request.csr_pem, request.user, request.groups)
        if request.mode.exec_plugin:
            self.login_url()
            # No credential is minted now, so the ban gate is asked here: no kubeconfig either.
            self.home.stores.ban_gate(request.user)

    def cluster_name(self, request: IssueRequest) -> str:
        return request.cluster or self.settings.cluster.name

    @cached_property
    def cluster_ca_pem(self) -> bytes:
        return certs_to_pem(load_certificates(self.home.layout.cert_path("ca"), what="cluster CA certificate"))

    @cached_property
    def cert_issuer(self) -> CertificateIssuer:
        # Loaded once per service: parsing the CA key (RSA in a kubeadm tree) costs more than signing.
        return self.home.stores.issuer()

    def cluster_entry(self, request: IssueRequest) -> ClusterEntry:
        if request.via_proxy is not None:
            return ClusterEntry(self.cluster_name(request), request.via_proxy, self.proxy_ca_pem())
        server = request.server or self.settings.cluster.server
        return ClusterEntry(self.cluster_name(request), server, request.ca_pem or self.cluster_ca_pem)

    def proxy_ca_pem(self) -> bytes | None:
        """The CA kubectl trusts `authsvc proxy` with: the cluster CA, which signs the certificate
        `authsvc init` makes for it (or will make); None (the system's trust store) when the
        operator gave the proxy a certificate from another CA."""
        return self._ca_pem_if_it_signed(self.home.layout.path(self.settings.proxy.tls_cert), "proxy certificate")

    def preview(self, request: IssueRequest) -> dict[str, Any]:
        """The kubeconfig's shape before issuing: the user entry carries no credential yet.

        Used to find merge conflicts before anything is signed.
        """
        self.check(request)
        user = self._exec_user(request)[0] if request.mode.exec_plugin else UserEntry(request.user)
        return build_kubeconfig(self.cluster_entry(request), user, namespace=request.namespace)

    def issue(self, request: IssueRequest) -> IssuedKubeconfig:
        """Issue the credential, build the kubeconfig, record it; raises before issuing on any refusal."""
        self.check(request)
        cluster = self.cluster_entry(request)
        notes: tuple[str, ...] = ()
        if request.mode.exec_plugin:
            user_entry, notes = self._exec_user(request)
            pending = self._pending(request, user_entry)
        elif request.mode is IssueMode.TOKEN:
            pending = self._token(request)
        elif request.csr_pem is not None:
            pending = self._signed_csr(request, request.csr_pem)
        else:
            pending = self._certificate(request)
        config = build_kubeconfig(cluster, pending.user_entry, namespace=request.namespace)
        credential = self.credentials.record(pending, now=self.home.clock())
        if request.mode.exec_plugin:  # no credential was minted (its issuance line comes at login)
            self._audit_exec_kubeconfig(credential)
        return IssuedKubeconfig(config, config["current-context"], credential, notes)

    def _audit_exec_kubeconfig(self, credential: IssuedCredential) -> None:
        from authsvc.audit.events import KUBECONFIG_ISSUE, OK, AuditEvent

        actor = credential.requester or self.home.stores.actor
        event = AuditEvent(KUBECONFIG_ISSUE, OK, actor=actor, subject=credential.username,
                           ids={"kubeconfig": str(credential.id)}, details={"mode": credential.mode.value})  # fmt: skip
        self.home.stores.audit.record(self.home.clock(), event)

    def _pending(
        self,
        request: IssueRequest,
        user_entry: UserEntry,
        *,
        expires_at: dt.datetime | None = None,
        serial: str | None = None,
        token_jti: str | None = None,
    ) -> PendingCredential:
        return PendingCredential(
            request.user,
            request.groups,
            request.mode,
            self.cluster_name(request),
            user_entry,
            expires_at=expires_at,
            serial=serial,
            token_jti=token_jti,
            requester=request.requester,
        )

    def _certificate(self, request: IssueRequest) -> PendingCredential:
        issued = self.cert_issuer.create(
            request.user,
            profile=CLIENT,
            groups=request.groups,
            ttl=request.ttl or self.settings.pki.client_ttl,
            key_type=self.settings.pki.key_type,
            requester=request.requester,
        )
        # The key goes into the kubeconfig unencrypted: client-go cannot read encrypted keys.
        user = UserEntry(request.user, client_cert_pem=issued.cert_pem, client_key_pem=issued.key_pem())
        return self._pending(request, user, expires_at=issued.record.not_after, serial=issued.record.serial)

    def _signed_csr(self, request: IssueRequest, csr_pem: bytes) -> PendingCredential:
        issued = self.cert_issuer.sign_csr(
            csr_pem, profile=CLIENT, ttl=request.ttl or self.settings.pki.client_ttl, requester=request.requester
        )
        user = UserEntry(request.user, client_cert_pem=issued.cert_pem, client_key_path=request.key_path)
        return self._pending(request, user, expires_at=issued.record.not_after, serial=issued.record.serial)

    def _token(self, request: IssueRequest) -> PendingCredential:
        token = self.home.stores.token_service.issue_user_token(
            request.user, request.groups, ttl=request.ttl, uid=request.uid, source=request.source
        )
        user = UserEntry(request.user, token=token.token)
        return self._pending(request, user, expires_at=token.expires_at, token_jti=token.jti)

    def _exec_user(self, request: IssueRequest) -> tuple[UserEntry, tuple[str, ...]]:
        ca_pem = self.login_ca_pem()
        notes: tuple[str, ...] = ()
        if ca_pem is None:
            notes = (
                f"the login endpoint's certificate ({self.settings.server.tls_cert}) is not from the cluster CA: "
                "no --ca-data in the plugin's arguments, so `authsvc login` will use the system trust store",
            )
        if request.browser:
            issuer, client_id = self.browser_client(request.client_id)
            exec_config = browser_exec_config(
                issuer=issuer, client_id=client_id, ca_pem=ca_pem, username=request.user, install_hint=INSTALL_HINT
            )
            return UserEntry(request.user, exec_config=exec_config), notes
        exec_config = exec_user_config(
            login_url=self.login_url(),
            ca_pem=ca_pem,
            username=request.user,
            install_hint=INSTALL_HINT,
            certificate=request.mode is IssueMode.EXEC_CERT,
        )
        return UserEntry(request.user, exec_config=exec_config), notes

    def browser_client(self, client_id: str | None) -> tuple[str, str]:
        """The provider's issuer and the public client kubectl signs in as (--client-id, or the
        only public client in oidc.clients)."""
        issuer = self.settings.tokens.user_issuer
        public = [c.id for c in self.settings.oidc.public_clients()]
        if issuer is None or not public:
            raise ConfigError(
                "--browser needs the OpenID Connect provider: set tokens.user_issuer and a public client in "
                "oidc.clients (see docs/oidc.md)"
            )
        if client_id is None:
            if len(public) > 1:
                raise UsageError(f"several public OIDC clients ({', '.join(public)}): choose one with --client-id")
            return issuer, public[0]
        if client_id not in public:
            raise UsageError(f"--client-id {client_id!r} is not a public client in oidc.clients ({', '.join(public)})")
        return issuer, client_id

    def login_url(self) -> str:
        """Where `authsvc login` posts credentials: the public URL of this authsvc, plus /login."""
        public_url = self.settings.server.published_url(
            "exec-mode kubeconfigs send logins to <server.public_url>/login"
        )
        check_server_url(public_url, source="server.public_url in authsvc.yaml")
        return public_url.rstrip("/") + "/login"

    def login_ca_pem(self) -> bytes | None:
        """The cluster CA bundle when it issued authsvc's serving certificate (or that is not made yet)."""
        return self._ca_pem_if_it_signed(self.home.layout.path(self.settings.server.tls_cert), "serving certificate")

    def _ca_pem_if_it_signed(self, cert_file: Path, what: str) -> bytes | None:
        if not cert_file.exists():
            # `authsvc init` signs authsvc's serving certificates with the cluster CA.
            return self.cluster_ca_pem
        cluster_ca = x509.load_pem_x509_certificates(self.cluster_ca_pem)
        for cert in load_certificates(cert_file, what=what):
            if any(issued_by(cert, ca) for ca in cluster_ca):
                return self.cluster_ca_pem
        return None

    def _server_source(self, request: IssueRequest) -> str:
        return "--server" if request.server else "cluster.server in authsvc.yaml"
