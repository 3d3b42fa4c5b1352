"""Who is asking: a request's credential (a client certificate or a bearer token) to an identity.

- A client certificate has been verified by the TLS handshake against `proxy.client_ca`
  (kube-apiserver's --client-ca-file); its identity is kube-apiserver's: CN = user name,
  O = groups. Parsed once per distinct certificate (cached by its SHA-256 until it expires),
  and refused once expired even on a connection opened before.
- A bearer token goes to the webhook's authenticator chain (every backend: token file,
  bootstrap tokens, issuers, authsvc's tokens, /login tokens re-checked in the directory), on
  a thread of the proxy's pool (`run_blocking`): backends block on LDAP, HTTP and the database.
  Answers are cached by the token's SHA-256 as the webhook caches them (`authn.cache_ttl`,
  `negative_cache_ttl`; an outage is never cached). A token valid only for other audiences
  (e.g. a service-account token for another API) is refused, as kube-apiserver would.

As kube-apiserver's union authenticator, a certificate is looked at before a token.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jwt

from authsvc.authn.authsvc_tokens import NAME as AUTHSVC_BACKEND
from authsvc.authn.chain import AuthenticatorChain
from authsvc.identity import UserInfo
from authsvc.proxy.headers import has_control_characters
from authsvc.redact import fingerprint, token_digest
from authsvc.webhook.result_cache import ResultCache
from authsvc.webhook.tokenreview import granted_audiences
from pki.clock import Clock

# Runs a blocking call off the event loop (the proxy's thread pool) and awaits it.
RunBlocking = Callable[..., Awaitable[Any]]

# A certificate's identity is a pure function of its bytes: kept until it expires (or evicted).
CERTIFICATE_CACHE_TTL = 3600.0
CERTIFICATE_CACHE_SIZE = 10_000


class CredentialKind(StrEnum):
    TOKEN = "token"
    CERTIFICATE = "certificate"


@dataclass(frozen=True, slots=True)
class Credential:
    """What the request presented, as the audit line and the revocation check see it."""

    kind: CredentialKind
    # token: the 12-hex-digit SHA-256 prefix (authsvc.redact); certificate: its serial (hex).
    fingerprint: str
    # The `jti` of a token authsvc signed (what `authsvc token revoke` takes); None otherwise.
    token_id: str | None = None

    @property
    def serial(self) -> str | None:
        return self.fingerprint if self.kind is CredentialKind.CERTIFICATE else None

    def describe(self) -> str:
        return f"{self.kind.value}:{self.fingerprint}"


@dataclass(frozen=True, slots=True)
class Authenticated:
    user: UserInfo
    credential: Credential
    cached: bool = False


@dataclass(frozen=True, slots=True)
class Refused:
    """Not forwarded: 401 (no credential, or one nobody vouches for, expired, revoked), or 503
    when a backend that could have decided is down (fail closed: never forwarded either)."""

    status: int
    reason: str  # for the audit line and the log; never a secret
    credential: Credential | None = None
    backend: str = ""


@dataclass(frozen=True, slots=True)
class _TokenAnswer:
    user: UserInfo | None
    error: str | None
    token_id: str | None


@dataclass(frozen=True, slots=True)
class _CertificateAnswer:
    user: UserInfo | None  # None: expired, or an identity that cannot be a header value
    serial: str
    not_after: float


def bearer_token(authorization: str | None) -> str | None:
    """The token of `Authorization: Bearer TOKEN` (scheme case-insensitive, as kube-apiserver's
    bearertoken authenticator reads it); None for no header, another scheme or a malformed one."""
    if not authorization:
        return None
    parts = authorization.strip().split(" ")
    if len(parts) != 2 or parts[0].lower() != "bearer" or not parts[1]:
        return None
    token = parts[1]
    return token if token.isascii() and token.isprintable() else None


class ProxyAuthenticator:
    def __init__(
        self,
        chain: AuthenticatorChain,
        token_cache: ResultCache[_TokenAnswer],
        clock: Clock,
        run_blocking: RunBlocking,
        *,
        api_audiences: Sequence[str],
    ) -> None:
        self.chain = chain
        self.token_cache = token_cache
        self.clock = clock
        self.run_blocking = run_blocking
        self.api_audiences = tuple(api_audiences)
        self.certificates: ResultCache[_CertificateAnswer] = ResultCache(
            CERTIFICATE_CACHE_TTL, 0.0, CERTIFICATE_CACHE_SIZE
        )

    async def authenticate(self, authorization: str | None, peer_certificate: bytes | None) -> Authenticated | Refused:
        now = self.clock().timestamp()
        if peer_certificate:
            return self._certificate(peer_certificate, now)
        token = bearer_token(authorization)
        if token is None:
            reason = "no credential" if not authorization else "not a bearer token"
            return Refused(401, reason)
        digest = token_digest(token)
        answer = self.token_cache.get(digest, now)
        cached = answer is not None
        if answer is None:
            answer = await self.run_blocking(self._ask_chain, token, digest, now)
        credential = Credential(CredentialKind.TOKEN, fingerprint(digest), answer.token_id)
        if answer.user is not None:
            return Authenticated(answer.user, credential, cached)
        if answer.error is not None:
            return Refused(503, answer.error, credential)
        return Refused(401, "token not authenticated", credential)

    def _ask_chain(self, token: str, digest: bytes, now: float) -> _TokenAnswer:
        result = self.chain.authenticate(token)
        user = result.user
        if user is not None and granted_audiences(self.api_audiences, user) is None:
            user = None  # valid, but for another audience: the API server would refuse it too
        if user is not None and has_control_characters(user):
            user = None  # cannot be a header value: refused, never forwarded altered
        token_id = _token_id(token) if user is not None and user.backend == AUTHSVC_BACKEND else None
        answer = _TokenAnswer(user, result.error, token_id)
        if result.error is None:  # an outage is never cached: the next request asks again
            self.token_cache.put(digest, answer, now, positive=user is not None, not_after=result.not_after)
        return answer

    def _certificate(self, der: bytes, now: float) -> Authenticated | Refused:
        key = hashlib.sha256(der).digest()
        answer = self.certificates.get(key, now)
        cached = answer is not None
        if answer is None:
            answer = _read_certificate(der)
            if answer.not_after > now:
                self.certificates.put(key, answer, now, positive=True, not_after=answer.not_after)
        credential = Credential(CredentialKind.CERTIFICATE, answer.serial)
        if answer.not_after <= now:
            return Refused(401, "client certificate expired", credential)
        if answer.user is None:
            return Refused(401, "client certificate names an identity that cannot be forwarded", credential)
        return Authenticated(answer.user, credential, cached)


def _read_certificate(der: bytes) -> _CertificateAnswer:
    from cryptography import x509

    from pki.inventory import serial_hex
    from pki.names import subject_user

    certificate = x509.load_der_x509_certificate(der)
    username, groups = subject_user(certificate.subject)
    user: UserInfo | None = UserInfo(username=username, groups=groups, backend="x509")
    if not username or (user is not None and has_control_characters(user)):
        user = None  # kube-apiserver refuses a certificate without a CN too
    return _CertificateAnswer(user, serial_hex(certificate.serial_number), certificate.not_valid_after_utc.timestamp())


def _token_id(token: str) -> str | None:
    """The `jti` of a token a backend has just verified (read again without verifying: the
    backend did). Only authsvc's revocation knows token ids; other tokens have none to check."""
    if token.count(".") != 2:
        return None
    try:
        claims = jwt.decode(token, options={"verify_signature": False})  # verified by the chain
    except jwt.PyJWTError:
        return None
    jti = claims.get("jti")
    return jti if isinstance(jti, str) else None
