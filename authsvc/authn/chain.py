"""The authenticator chain: backends from `authn.chain`, walked in order, first identity wins.

A token is routed by its shape where the shape says enough: a JWT goes only to the backends
that know its `iss` (plus those that take any issuer), a bootstrap token
(`[a-z0-9]{6}.[a-z0-9]{16}`) to the backends that take those. A backend declares what it
takes in the `Authenticator` protocol (authn/base.py): `token_kinds`, and `issuers` for JWTs.

The chain decodes a JWT's header and payload *without* verifying them, only to route it (and
to cap how long the result is cached by `exp`); verifying is each backend's job.
Like kube-apiserver's union authenticator, a backend that cannot decide does not stop the
walk: a later backend may still vouch for the token; if none does, the answer carries the
outage (authenticated false with an error) instead of a denial.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from jwt.utils import base64url_decode

from authsvc.authn.base import Authenticator, ChainContext, TokenKind
from authsvc.errors import BackendUnavailable, ConfigError
from authsvc.identity import UserInfo

log = logging.getLogger(__name__)

BOOTSTRAP_TOKEN = re.compile(r"([a-z0-9]{6})\.([a-z0-9]{16})")
_JSON = json.JSONDecoder()


@dataclass(frozen=True, slots=True)
class TokenShape:
    kind: TokenKind
    issuer: str | None = None
    # The unverified `exp` (epoch seconds); trusted only once a backend has verified the token.
    expires: float | None = None


def classify(token: str) -> TokenShape:
    dots = token.count(".")  # a bootstrap token has one, a JWT two: a JWT never pays for the regex
    if dots == 1 and BOOTSTRAP_TOKEN.fullmatch(token):
        return _BOOTSTRAP
    if dots != 2:
        return _OPAQUE
    claims = unverified_claims(token)
    if claims is None:
        return _OPAQUE
    issuer = claims.get("iss")
    return TokenShape(TokenKind.JWT, issuer if isinstance(issuer, str) else None, numeric_date(claims.get("exp")))


_BOOTSTRAP = TokenShape(TokenKind.BOOTSTRAP)
_OPAQUE = TokenShape(TokenKind.OPAQUE)


def unverified_claims(token: str) -> dict[str, Any] | None:
    """The payload of a compact JWS, decoded (PyJWT's base64url_decode) but not checked in any
    way: routing only (see above); None when it is not base64url JSON. Not `jwt.decode(...,
    verify_signature=False)`: PyJWT's parse checks every character of the three segments in a
    Python loop (28 µs for a 365-character ES256 JWT, this 3 µs), and the backend that verifies
    the token parses it again; an uncached review paid that twice (an external issuer's token
    three times: its header was read with PyJWT too)."""
    segment = token.split(".", 2)[1]
    try:
        claims = _JSON.decode(base64url_decode(segment).decode())
    except (ValueError, TypeError, RecursionError):  # binascii.Error and UnicodeDecodeError are ValueErrors
        return None
    return claims if isinstance(claims, dict) else None


def numeric_date(value: object) -> float | None:
    """A JWT NumericDate as a float; None when it is not a finite number or is too large for a
    float (10**400: claims not verified yet must not raise)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True, slots=True)
class Route:
    backend: Authenticator
    kinds: frozenset[TokenKind]
    issuers: frozenset[str] | None

    @classmethod
    def of(cls, backend: Authenticator) -> Route:
        return cls(backend, backend.token_kinds, backend.issuers)

    def accepts(self, shape: TokenShape) -> bool:
        if shape.kind not in self.kinds:
            return False
        return shape.kind is not TokenKind.JWT or self.issuers is None or shape.issuer in self.issuers


@dataclass(frozen=True, slots=True)
class ChainResult:
    user: UserInfo | None
    # Backends that could not decide; an error answer when no backend vouched for the token.
    unavailable: tuple[str, ...] = ()
    # The token's exp when a backend vouched for a JWT: the cache never outlives it.
    not_after: float | None = None

    @property
    def error(self) -> str | None:
        if self.user is not None or not self.unavailable:
            return None
        return f"authentication backend unavailable: {', '.join(self.unavailable)}"

    @property
    def backend(self) -> str:
        if self.user is not None:
            return self.user.backend
        return self.unavailable[0] if self.unavailable else ""


class AuthenticatorChain:
    def __init__(self, backends: Sequence[Authenticator]) -> None:
        self.backends = tuple(backends)
        self._routes = tuple(Route.of(b) for b in backends)

    def authenticate(self, token: str) -> ChainResult:
        shape = classify(token)
        unavailable: list[str] = []
        for route in self._routes:
            if not route.accepts(shape):
                continue
            user = _ask(route.backend, token, unavailable)
            if user is not None:
                if user.backend != route.backend.name:
                    user = dataclasses.replace(user, backend=route.backend.name)
                return ChainResult(user, tuple(unavailable), shape.expires)
        return ChainResult(None, tuple(unavailable))

    def not_ready(self) -> list[str]:
        """Names of the backends that cannot answer now (for /readyz)."""
        return [b.name for b in self.backends if not _is_ready(b)]


def _ask(backend: Authenticator, token: str, unavailable: list[str]) -> UserInfo | None:
    try:
        return backend.authenticate(token)
    except BackendUnavailable as e:
        log.warning("authentication backend %s unavailable: %s", backend.name, e)
    except Exception as e:
        # Fail closed. Only the type is logged: an unexpected message might quote the token.
        log.error("authentication backend %s failed: %s (treated as unavailable)", backend.name, type(e).__name__)
    unavailable.append(backend.name)
    return None


def _is_ready(backend: Authenticator) -> bool:
    try:
        return bool(backend.ready())
    except Exception as e:
        log.warning("readiness check of backend %s failed: %s", backend.name, type(e).__name__)
        return False


Factory = Callable[[ChainContext], "Authenticator | None"]


def load_factory(name: str) -> Factory:
    from authsvc.authn import REGISTRY

    target = REGISTRY.get(name)
    if target is None:
        known = ", ".join(sorted(REGISTRY)) or "none"
        raise ConfigError(f"authn.chain: unknown backend {name!r} (known: {known})")
    module_name, attribute = target.split(":")
    factory: Factory = getattr(importlib.import_module(module_name), attribute)
    return factory


def build_chain(context: ChainContext) -> AuthenticatorChain:
    """Build every backend named in `authn.chain`, in order; unconfigured ones (None) are left out."""
    backends: list[Authenticator] = []
    for name in context.settings.authn.chain:
        backend = load_factory(name)(context)
        if backend is not None:
            backends.append(backend)
    return AuthenticatorChain(backends)
