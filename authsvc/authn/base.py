"""The one protocol every authentication backend implements, its deny-by-default base, and what
backends are built from (`ChainContext`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from authsvc.identity import UserInfo

if TYPE_CHECKING:
    from authsvc.home.opened import Home
    from authsvc.home.stores import HomeStores
    from authsvc.settings import Settings
    from pki.clock import Clock


class TokenKind(StrEnum):
    """A bearer token's shape, which routes it to the backends that take that shape."""

    JWT = "jwt"
    BOOTSTRAP = "bootstrap"
    OPAQUE = "opaque"


ALL_KINDS = frozenset(TokenKind)
# `issuers` value of a backend that takes JWTs of any issuer (a token file: any string).
ANY_ISSUER = None

# Re-checks at review time who a /login token names (by its `authsvc.io/source`): the identity
# to answer with, None for "no longer valid"; raises BackendUnavailable when it cannot decide.
IdentityRefresher = Callable[[UserInfo], "UserInfo | None"]
# username -> directory groups, None for a user the directory does not know; raises
# BackendUnavailable when it cannot answer.
GroupLookup = Callable[[str], "tuple[str, ...] | None"]


class Authenticator(Protocol):
    """A backend that can tell who a bearer token belongs to.

    `authenticate` returns the identity, or None when the token is not one of its own or
    is invalid (a definite "no"). It raises `authsvc.errors.BackendUnavailable` only when
    it cannot decide (directory down, JWKS unreachable): the chain then fails closed.
    The chain sends a backend only the tokens it declares: `token_kinds`, and for JWTs the
    `issuers` it knows (`ANY_ISSUER`: every issuer).
    """

    name: str
    token_kinds: frozenset[TokenKind]
    issuers: frozenset[str] | None

    def authenticate(self, token: str) -> UserInfo | None: ...

    def ready(self) -> bool:
        """True when the backend can currently answer (for /readyz)."""
        ...


class AuthenticatorBase:
    """Deny by default: a backend built on this takes no token and vouches for no one until it
    declares what it takes (`token_kinds`, `issuers`) and overrides `authenticate`."""

    name = ""
    token_kinds: frozenset[TokenKind] = frozenset()
    issuers: frozenset[str] | None = frozenset()

    def authenticate(self, token: str) -> UserInfo | None:
        return None

    def ready(self) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class ChainContext:
    """What the backends of `authn.chain` are built from: settings and explicit collaborators.

    `refreshers` (by token source) and `group_lookup` come from the login wiring
    (authsvc/login/wiring.py), built before the chain.
    """

    settings: Settings
    home_root: Path
    clock: Clock
    stores: HomeStores
    refreshers: Mapping[str, IdentityRefresher] = field(default_factory=dict)
    group_lookup: GroupLookup | None = None

    @classmethod
    def of(
        cls,
        home: Home,
        refreshers: Mapping[str, IdentityRefresher] | None = None,
        group_lookup: GroupLookup | None = None,
    ) -> ChainContext:
        return cls(home.settings, home.root, home.clock, home.stores, dict(refreshers or {}), group_lookup)
