"""Builds the login service, the LDAP service and the users file once per server process,
and registers what other parts call:

    services.components["login"]                       LoginComponents (POST /login)
    services.components["identity_refreshers"]["ldap"]  re-checks /login tokens at review time
    services.components["identity_refreshers"]["users"]
    services.components["readiness"]["ldap"|"users"]   () -> bool, false while a backend is down
    services.components["ldap_group_lookup"]           username -> groups | None (e.g. for users of
                                                       external OIDC issuers; same cache and rules)

`install` is idempotent; the /login blueprint calls it when an app is created, so every app
built by `create_app` has the refreshers, whether or not anyone has logged in yet.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from authsvc.authn.refreshers import LDAPIdentityRefresher, UsersFileIdentityRefresher
from authsvc.errors import ConfigError
from authsvc.ldap.service import LDAPService
from authsvc.login.backends import LDAPLoginBackend, LoginBackend, LoginIdentity, UsersFileLoginBackend
from authsvc.login.ratelimit import Limit, RateLimiter
from authsvc.login.service import LoginService, TokenIssuer
from authsvc.login.users_file import UsersFile

if TYPE_CHECKING:
    import datetime as dt

    from authsvc.home.opened import Home
    from authsvc.runtime import Services

LOGIN_COMPONENT = "login"
REFRESHERS_COMPONENT = "identity_refreshers"
READINESS_COMPONENT = "readiness"
GROUP_LOOKUP_COMPONENT = "ldap_group_lookup"

_install_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class LoginComponents:
    service: LoginService | None  # None: login.backends is empty, /login answers 404
    ldap: LDAPService | None
    users: UsersFile | None


class LoginMetrics(Protocol):
    """Where login answers and LDAP failures are counted: the app's metrics (authsvc.metrics.server),
    which sum them over every process of `authsvc serve` with the TokenReview counters."""

    def login_result(self, result: str) -> None: ...

    def ldap_error(self, operation: str) -> None: ...


def install(services: Services, metrics: LoginMetrics | None = None) -> LoginComponents:
    """Build and register the login components once per Services (later calls return them)."""
    existing = services.components.get(LOGIN_COMPONENT)
    if isinstance(existing, LoginComponents):  # every /login request: no lock
        return existing
    with _install_lock:
        existing = services.components.get(LOGIN_COMPONENT)
        if isinstance(existing, LoginComponents):
            return existing
        components = build(services.home, metrics)
        refreshers = services.components.setdefault(REFRESHERS_COMPONENT, {})
        policy = services.settings.pki.policy.to_policy()  # what /login's tokens were issued under
        readiness = services.components.setdefault(READINESS_COMPONENT, {})
        if components.ldap is not None:
            refresher = LDAPIdentityRefresher(components.ldap, policy)
            refreshers["ldap"] = refresher
            readiness["ldap"] = components.ldap.ready
            services.components[GROUP_LOOKUP_COMPONENT] = refresher.groups_for
        if components.users is not None:
            refreshers["users"] = UsersFileIdentityRefresher(components.users, policy)
            readiness["users"] = UsersFileLoginBackend(components.users).ready
        services.components[LOGIN_COMPONENT] = components
        return components


def build(home: Home, metrics: LoginMetrics | None = None) -> LoginComponents:
    """Raises ConfigError when login.backends names a backend that is not configured."""
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
        )
    return LoginComponents(service, ldap, users)


def rate_limiter(home: Home) -> RateLimiter:
    login = home.settings.login
    return RateLimiter(
        home.stores.engine,
        home.clock,
        user=Limit("user", login.max_failures_per_user, login.failure_window),
        address=Limit("addr", login.max_failures_per_address, login.failure_window),
    )


def token_issuer(home: Home) -> TokenIssuer:
    def issue(identity: LoginIdentity, ttl: dt.timedelta | None) -> tuple[str, dt.datetime]:
        issued = home.stores.token_service.issue_user_token(
            identity.username, identity.groups, ttl=ttl, uid=identity.uid, source=identity.source
        )
        return issued.token, issued.expires_at

    return issue
