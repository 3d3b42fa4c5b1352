"""The login service behind `POST /login`: credentials in, a short-lived authsvc token out (or,
with a CSR, a short-lived client certificate for the CSR's key: `login.certificate_ttl`).

    refuse an empty name or password (before any backend: LDAP treats an empty password as an
        anonymous bind that succeeds, RFC 4513 section 5.1.2)
    check the rate limits (user name, client address)
    ask the backends in order; the first that knows the user decides
    count a failure, or clear the user's count and issue the token (or sign the certificate)

Whatever went wrong, the caller learns only "invalid user name or password"; the operator
learns why from the log line and the audit log's login line ("wrong password", "account
disabled (AD data 533)", "unknown user", ...).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from authsvc.access.bans import AccessRevoked
from authsvc.errors import AuthenticationFailed, BackendUnavailable, RateLimited
from authsvc.login.backends import UNKNOWN_USER, LoginBackend, LoginIdentity, Verdict
from authsvc.login.ratelimit import RateLimiter, limit_key
from pki.errors import PolicyError

log = logging.getLogger(__name__)

INVALID_CREDENTIALS = "invalid user name or password"


@dataclass(frozen=True, slots=True)
class IssuedLogin:
    """What /login returns: the token (or the certificate, PEM, for a login with a CSR) and who it names."""

    token: str
    expires_at: dt.datetime
    username: str
    uid: str
    groups: tuple[str, ...]
    source: str
    certificate: str = ""


# (identity, ttl) -> (token, expires_at); raises pki.errors.PolicyError for names the policy refuses.
TokenIssuer = Callable[[LoginIdentity, dt.timedelta | None], tuple[str, dt.datetime]]
# (identity, CSR PEM) -> (certificate PEM, expires_at): a client certificate for the identity on
# the CSR's key; raises pki.errors.PolicyError when the policy (or a ban) refuses it.
CertificateSigner = Callable[[LoginIdentity, bytes], tuple[str, dt.datetime]]
# Called with "ok", "refused", "rate_limited" or "unavailable" (metrics).
ResultHook = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    """What the audit log records about one attempt (never the password)."""

    result: str  # "ok", "refused", "rate_limited"
    user: str  # the directory's spelling when known, else the typed name (at most 64 characters)
    backend: str  # the backend that decided ("" when none knew the user)
    reason: str  # why it was refused ("" when it was not)
    address: str


AttemptHook = Callable[[LoginAttempt], None]


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
        on_attempt: AttemptHook = lambda _attempt: None,
        sign_certificate: CertificateSigner | None = None,
    ) -> None:
        self.sign_certificate = sign_certificate
        self.backends = tuple(backends)
        self.limiter = limiter
        self.issue = issue
        self.token_ttl = token_ttl
        self.max_username_length = max_username_length
        self.on_result = on_result
        self.on_attempt = on_attempt

    def login(self, username: str, password: str, address: str = "", *, csr: bytes | None = None) -> IssuedLogin:
        """A token, or with `csr` a certificate on its key. Raises AuthenticationFailed,
        RateLimited, BackendUnavailable or PolicyError."""
        identity = self.verify_credentials(username, password, address)
        token, certificate = "", ""
        try:
            if csr is None:
                token, expires_at = self.issue(identity, self.token_ttl)
            else:
                certificate, expires_at = self._sign(identity, csr)
        except PolicyError as e:
            self.policy_refused(identity, e, address)
            raise
        self.signed_in(identity, address)
        return IssuedLogin(
            token, expires_at, identity.username, identity.uid, identity.groups, identity.source, certificate
        )

    def _sign(self, identity: LoginIdentity, csr: bytes) -> tuple[str, dt.datetime]:
        if self.sign_certificate is None:
            raise PolicyError("this server does not sign certificates at login")
        return self.sign_certificate(identity, csr)

    def verify_credentials(self, username: str, password: str, address: str = "") -> LoginIdentity:
        """Who the credentials name, under every check of /login (empty values, rate limits, the
        backends in order, failures counted and cleared); nothing is issued and nothing counted as
        a success yet: the caller issues what it hands out, then calls `signed_in`. The browser
        sign-in (/authorize) comes through here too, so both share limits, refusals and metrics.

        Raises AuthenticationFailed, RateLimited or BackendUnavailable."""
        if not username or not password:
            self._refused(username, "", "empty user name or password", address)
            raise AuthenticationFailed(INVALID_CREDENTIALS)
        failures_on_record = self._limit(lambda: self.limiter.check(username, address), username, address)
        backend, verdict = self._verdict(username, password)
        account = verdict.subject
        if account is not None and limit_key("user", account) != limit_key("user", username):
            # The spelling reached an account under another name: that account's budget applies.
            check_account = functools.partial(self.limiter.check_user, account)
            failures_on_record = self._limit(check_account, account, address) or failures_on_record
        identity = verdict.identity
        if identity is None:
            self.limiter.record_failure(username, address, account=account)
            self._refused(account or username, backend, verdict.reason or "unknown user", address)
            raise AuthenticationFailed(INVALID_CREDENTIALS)
        if failures_on_record:  # most logins have none: no write then
            self.limiter.record_success(username, identity.username)
        return identity

    def signed_in(self, identity: LoginIdentity, address: str, *, via: str = "/login") -> None:
        """Count and log a login that handed something out (`via`: which endpoint)."""
        self.on_result("ok")
        self.on_attempt(LoginAttempt("ok", identity.username, identity.source, "", address))
        log.info(
            "login ok: user %s (%s) from %s via %s, %d groups",
            identity.username,
            identity.source,
            address or "-",
            via,
            len(identity.groups),
        )

    def policy_refused(self, identity: LoginIdentity, error: PolicyError, address: str) -> None:
        """Audit a login whose credentials were right but whose identity the signing policy (or
        a ban: `authsvc access revoke`) refuses."""
        banned = isinstance(error, AccessRevoked)
        reason = "access revoked (authsvc access revoke)" if banned else f"signing policy: {error}"
        self.on_attempt(LoginAttempt("refused", identity.username, identity.source, reason, address))

    def _refused(self, user: str, backend: str, reason: str, address: str) -> None:
        """Count, log and audit a refusal: the reason is the operator's, never the client's."""
        self.on_result("refused")
        log.info("login refused: user %s from %s: %s", _shown(user), address or "-", reason)
        self.on_attempt(LoginAttempt("refused", user[:64], backend, reason, address))

    def _limit(self, check: Callable[[], bool], user: str, address: str) -> bool:
        try:
            return check()
        except RateLimited as e:
            self.on_result("rate_limited")
            self.on_attempt(LoginAttempt("rate_limited", user[:64], "", str(e), address))
            raise

    def _verdict(self, username: str, password: str) -> tuple[str, Verdict]:
        """(the backend that decided, its verdict)."""
        if len(username) > self.max_username_length:
            # No directory holds such a name; do not make one search for it.
            return "", Verdict(False, reason=f"user name longer than {self.max_username_length} characters")
        try:
            return self._ask(username, password)
        except BackendUnavailable:
            self.on_result("unavailable")
            raise

    def _ask(self, username: str, password: str) -> tuple[str, Verdict]:
        """The first backend that knows the user decides; an account some backend matched the
        spelling to without knowing it as this user is kept (its budget applies), and so is
        the first backend's reason for not knowing it."""
        unknown = UNKNOWN_USER
        for backend in self.backends:
            verdict = backend.authenticate(username, password)
            if verdict.known:
                return backend.name, verdict
            if unknown.subject is None and verdict.subject is not None:
                unknown = verdict
        return "", Verdict(False, subject=unknown.subject, reason=unknown.reason)

    def ready(self) -> bool:
        return all(backend.ready() for backend in self.backends)


def check_login_csr(csr_pem: bytes) -> None:
    """A CSR a login may bring: parsed, signed by its key, not asking for a CA, a key strong
    enough. Only its key is used (the certificate names the identity the login establishes).
    Raises PolicyError."""
    from pki.csr import csr_public_key, load_csr, refuse_ca_request
    from pki.keys import check_key_strength

    csr = load_csr(csr_pem)
    refuse_ca_request(csr)
    check_key_strength(csr_public_key(csr))


def _shown(username: str) -> str:
    """A typed user name as logs show it: repr (control characters visible), at most 64 characters."""
    return repr(username[:64]) + ("..." if len(username) > 64 else "")
