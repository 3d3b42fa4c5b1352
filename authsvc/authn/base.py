"""The one protocol every authentication backend implements."""

from __future__ import annotations

from typing import Protocol

from authsvc.identity import UserInfo


class Authenticator(Protocol):
    """A backend that can tell who a bearer token belongs to.

    `authenticate` returns the identity, or None when the token is not one of its own or
    is invalid (a definite "no"). It raises `authsvc.errors.BackendUnavailable` only when
    it cannot decide (directory down, JWKS unreachable): the chain then fails closed.
    """

    name: str

    def authenticate(self, token: str) -> UserInfo | None: ...

    def ready(self) -> bool:
        """True when the backend can currently answer (for /readyz)."""
        ...
