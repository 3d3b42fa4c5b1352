"""The login service behind `POST /login`: credentials in, a short-lived authsvc token out.

    refuse an empty name or password (before any backend: LDAP treats an empty password as an
        anonymous bind that succeeds, RFC 4513 section 5.1.2)
    check the rate limits (user name, client address)
    ask the backends in order; the first that knows the user decides
    count a failure, or clear the user's count and issue the token

Whatever went wrong, the caller learns only "invalid user name or password"; the log says more.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from authsvc.errors import AuthenticationFailed, BackendUnavailable, RateLimited
from authsvc.login.backends import UNKNOWN_USER, LoginBackend, LoginIdentity, Verdict
from authsvc.login.ratelimit import RateLimiter, limit_key

log = logging.getLogger(__name__)

INVALID_CREDENTIALS = "invalid user name or password"


@dataclass(frozen=True, slots=True)
class IssuedLogin:
    """What /login returns: the token and who it names."""

    token: str
    expires_at: dt.datetime
    username: str
    uid: str
    groups: tuple[str, ...]
    source: str


# (identity, ttl) -> (token, expires_at); raises pki.errors.PolicyError for names the policy refuses.
TokenIssuer = Callable[[LoginIdentity, dt.timedelta | None], tuple[str, dt.datetime]]
# Called with "ok", "refused", "rate_limited" or "unavailable" (metrics).
ResultHook = Callable[[str], None]


class LoginService:
    def __init__(
        self,
        backends: Sequence[LoginBackend],
        limiter: RateLimiter,
        issue: TokenIssuer,
        *,
        token_ttl: dt.timedelta | None = None,
        max_username_length: int = 256,
        on_result: ResultHook = lambda _result: None,
    ) -> None:
        self.backends = tuple(backends)
        self.limiter = limiter
        self.issue = issue
        self.token_ttl = token_ttl
        self.max_username_length = max_username_length
        self.on_result = on_result

    def login(self, username: str, password: str, address: str = "") -> IssuedLogin:
        """Raises AuthenticationFailed, RateLimited, BackendUnavailable or PolicyError."""
        identity = self.verify_credentials(username, password, address)
        token, expires_at = self.issue(identity, self.token_ttl)
        self.signed_in(identity, address)
        return IssuedLogin(token, expires_at, identity.username, identity.uid, identity.groups, identity.source)

    def verify_credentials(self, username: str, password: str, address: str = "") -> LoginIdentity:
        """Who the credentials name, under every check of /login (empty values, rate limits, the
        backends in order, failures counted and cleared); nothing is issued and nothing counted as
        a success yet: the caller issues what it hands out, then calls `signed_in`. The browser
        sign-in (/authorize) comes through here too, so both share limits, refusals and metrics.

        Raises AuthenticationFailed, RateLimited or BackendUnavailable."""
        if not username or not password:
            self.on_result("refused")
            raise AuthenticationFailed(INVALID_CREDENTIALS)
        failures_on_record = self._limit(lambda: self.limiter.check(username, address))
        verdict = self._verdict(username, password)
        account = verdict.subject
        if account is not None and limit_key("user", account) != limit_key("user", username):
            # The spelling reached an account under another name: that account's budget applies.
            failures_on_record = self._limit(lambda: self.limiter.check_user(account)) or failures_on_record
        identity = verdict.identity
        if identity is None:
            self.limiter.record_failure(username, address, account=account)
            self.on_result("refused")
            log.info("login refused: user %s from %s", _shown(username), address or "-")
            raise AuthenticationFailed(INVALID_CREDENTIALS)
        if failures_on_record:  # most logins have none: no write then
            self.limiter.record_success(username, identity.username)
        return identity

    def signed_in(self, identity: LoginIdentity, address: str, *, via: str = "/login") -> None:
        """Count and log a login that handed something out (`via`: which endpoint)."""
        self.on_result("ok")
        log.info(
            "login ok: user %s (%s) from %s via %s, %d groups",
            identity.username,
            identity.source,
            address or "-",
            via,
            len(identity.groups),
        )

    def _limit(self, check: Callable[[], bool]) -> bool:
        try:
            return check()
        except RateLimited:
            self.on_result("rate_limited")
            raise

    def _verdict(self, username: str, password: str) -> Verdict:
        if len(username) > self.max_username_length:
            return UNKNOWN_USER  # no directory holds such a name; do not make one search for it
        try:
            return self._ask(username, password)
        except BackendUnavailable:
            self.on_result("unavailable")
            raise

    def _ask(self, username: str, password: str) -> Verdict:
        """The first backend that knows the user decides; an account some backend matched the
        spelling to without knowing it as this user is kept (its budget applies)."""
        subject = None
        for backend in self.backends:
            verdict = backend.authenticate(username, password)
            if verdict.known:
                return verdict
            subject = subject or verdict.subject
        return Verdict(False, subject=subject)

    def ready(self) -> bool:
        return all(backend.ready() for backend in self.backends)


def _shown(username: str) -> str:
    """A typed user name as logs show it: repr (control characters visible), at most 64 characters."""
    return repr(username[:64]) + ("..." if len(username) > 64 else "")
