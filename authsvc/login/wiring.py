"""Builds the login side of a server once per process: the login service (POST /login), the
LDAP service, the users file, and what the webhook needs from them:

- identity refreshers by token source ("ldap", "users"): re-check /login tokens at review time;
- the directory group lookup (username -> groups | None) for users of external OIDC issuers
  with `groups_from_ldap` (same cache and failure rules);
- readiness checks of the directory and the users file, for /readyz.

authsvc/runtime.py calls `build` and `webhook_side` and hands the results to the chain and the app.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from authsvc.authn.base import GroupLookup, IdentityRefresher
from authsvc.authn.refreshers import LDAPIdentityRefresher, UsersFileIdentityRefresher
from authsvc.errors import AuthsvcError, BackendUnavailable, ConfigError
from authsvc.ldap.service import LDAPService
from authsvc.login.backends import LDAPLoginBackend, LoginBackend, LoginIdentity, UsersFileLoginBackend
from authsvc.login.ratelimit import Limit, RateLimiter
from authsvc.login.service import AttemptHook, CertificateSigner, LoginAttempt, LoginService, TokenIssuer
from authsvc.login.users_file import UsersFile
from pki.errors import PKIError

if TYPE_CHECKING:
    from authsvc.audit.log import AuditLog
    from authsvc.home.opened import Home
    from pki.issuance import CertificateIssuer
    from pki.policy import SigningPolicy


@dataclass(frozen=True, slots=True)
class LoginComponents:
    service: LoginService | None  # None: login.backends is empty, /login answers 404
    ldap: LDAPService | None
    users: UsersFile | None


@dataclass(frozen=True, slots=True)
class WebhookSide:
    """What the webhook takes from the login components."""

    refreshers: Mapping[str, IdentityRefresher] = field(default_factory=dict)
    group_lookup: GroupLookup | None = None
    readiness: Mapping[str, Callable[[], bool]] = field(default_factory=dict)


class LoginMetrics(Protocol):
    """Where login answers and LDAP failures are counted: the app's metrics (authsvc.metrics.server),
    which sum them over every process of `authsvc serve` with the TokenReview counters."""

    def login_result(self, result: str) -> None: ...

    def ldap_error(self, operation: str) -> None: ...


def webhook_side(components: LoginComponents, policy: SigningPolicy) -> WebhookSide:
    """Refreshers, group lookup and readiness from the login components; `policy` is the one
    /login's tokens were issued under (a group it would refuse now ends the token)."""
    refreshers: dict[str, IdentityRefresher] = {}
    readiness: dict[str, Callable[[], bool]] = {}
    group_lookup = None
    if components.ldap is not None:
        ldap_refresher = LDAPIdentityRefresher(components.ldap, policy)
        refreshers["ldap"] = ldap_refresher
        readiness["ldap"] = components.ldap.ready
        group_lookup = ldap_refresher.groups_for
    if components.users is not None:
        refreshers["users"] = UsersFileIdentityRefresher(components.users, policy)
        readiness["users"] = UsersFileLoginBackend(components.users).ready
    return WebhookSide(refreshers, group_lookup, readiness)


def build(home: Home, metrics: LoginMetrics | None = None, audit: AuditLog | None = None) -> LoginComponents:
    """`audit` gets a line per /login attempt. Raises ConfigError when login.backends names a
    backend that is not configured."""
    settings = home.settings
    ldap = users = None
    if settings.ldap.enabled:
        ldap = LDAPService.from_settings(
            settings.ldap,
            home_root=home.root,
            environ=home.secrets.environ,
            clock=home.clock,
            on_error=metrics.ldap_error if metrics else lambda _op: None,
        )
    if "users" in settings.login.backends:
        users = UsersFile(home.layout.path(settings.login.users_file))
    backends: list[LoginBackend] = []
    for name in settings.login.backends:
        if name == "ldap":
            if ldap is None:
                raise ConfigError("login.backends lists ldap but ldap.enabled is false: configure the ldap section")
            backends.append(LDAPLoginBackend(ldap))
        elif users is not None:
            backends.append(UsersFileLoginBackend(users))
    service = None
    if backends:
        service = LoginService(
            backends,
            rate_limiter(home),
            token_issuer(home),
            token_ttl=settings.login.token_ttl,
            max_username_length=settings.login.max_username_length,
            on_result=metrics.login_result if metrics else lambda _r: None,
            on_attempt=audited(home, audit) if audit else lambda _a: None,
            sign_certificate=certificate_signer(home),
        )
    return LoginComponents(service, ldap, users)


def audited(home: Home, audit: AuditLog) -> AttemptHook:
    def record(attempt: LoginAttempt) -> None:
        audit.login(
            home.clock(),
            result=attempt.result,
            user=attempt.user,
            backend=attempt.backend,
            reason=attempt.reason,
            client=attempt.address,
        )

    return record


def rate_limiter(home: Home) -> RateLimiter:
    login = home.settings.login
    return RateLimiter(
        home.stores.engine,
        home.clock,
        user=Limit("user", login.max_failures_per_user, login.failure_window),
        address=Limit("addr", login.max_failures_per_address, login.failure_window),
    )


def certificate_signer(home: Home) -> CertificateSigner:
    """Client certificates for logins with a CSR (`authsvc login --credential certificate`): the
    cluster CA signs the CSR's key for the identity the login established, for
    login.certificate_ttl, under the signing policy and the ban gate, recorded in the inventory
    (requester `login:<backend>`). The CA is loaded at the first such login: a server without
    the CA key (the webhook pods of config/kubernetes/) answers those with 503, tokens still work."""
    lock = threading.Lock()
    loaded: list[CertificateIssuer] = []

    def issuer() -> CertificateIssuer:
        with lock:
            if not loaded:
                try:
                    loaded.append(home.stores.issuer())
                except (AuthsvcError, PKIError, OSError) as e:
                    raise BackendUnavailable(f"this server cannot sign certificates: {e}") from None
            return loaded[0]

    def sign(identity: LoginIdentity, csr: bytes) -> tuple[str, dt.datetime]:
        issued = issuer().sign_for_identity(
            csr,
            identity.username,
            identity.groups,
            ttl=home.settings.login.certificate_ttl,
            requester=f"login:{identity.source}",
        )
        return issued.cert_pem.decode(), issued.record.not_after

    return sign


def token_issuer(home: Home) -> TokenIssuer:
    def issue(identity: LoginIdentity, ttl: dt.timedelta | None) -> tuple[str, dt.datetime]:
        issued = home.stores.token_service.issue_user_token(
            identity.username, identity.groups, ttl=ttl, uid=identity.uid, source=identity.source
        )
        return issued.token, issued.expires_at

    return issue
