"""The values the provider passes around: who signed in, a redeemed code, a refresh grant,
an access token presented at /userinfo. Frozen; Authlib reads them through its mixins' getters."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from authlib.oauth2.rfc6749 import ClientMixin, TokenMixin
from authlib.oidc.core import AuthorizationCodeMixin

from authsvc.login.backends import LoginIdentity


@dataclass(frozen=True, slots=True)
class SignedInUser:
    """A person who proved their credentials, and when (`auth_time` of their ID tokens)."""

    username: str
    uid: str
    groups: tuple[str, ...]
    source: str  # the login backend that vouched ("ldap", "users"): the tokens' source claim
    auth_time: dt.datetime

    @classmethod
    def of(cls, identity: LoginIdentity, auth_time: dt.datetime) -> SignedInUser:
        return cls(identity.username, identity.uid, identity.groups, identity.source, auth_time)


@dataclass(frozen=True, slots=True)
class StoredCode(AuthorizationCodeMixin):  # type: ignore[misc]  # Authlib ships no type hints
    """An authorization code that was just redeemed (it can never be redeemed again)."""

    client_id: str
    redirect_uri: str
    scope: str
    nonce: str
    code_challenge: str
    code_challenge_method: str
    user: SignedInUser
    family_id: str

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce or None

    def get_auth_time(self) -> int:
        return int(self.user.auth_time.timestamp())

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class RefreshGrant(TokenMixin):  # type: ignore[misc]
    """A refresh token that was just rotated: the family it belongs to and whom it names."""

    family_id: str
    client_id: str
    scope: str
    user: SignedInUser

    def check_client(self, client: ClientMixin) -> bool:
        return bool(client.get_client_id() == self.client_id)

    def get_scope(self) -> str:
        return self.scope

    def is_revoked(self) -> bool:
        return False  # a revoked one is never returned by the store

    def is_expired(self) -> bool:
        return False  # nor an expired one


@dataclass(frozen=True, slots=True)
class PresentedAccessToken(TokenMixin):  # type: ignore[misc]
    """An access token that verified (for /userinfo)."""

    client: ClientMixin
    scope: str
    user: SignedInUser

    def get_client(self) -> ClientMixin:
        return self.client

    def get_user(self) -> SignedInUser:
        return self.user

    def get_scope(self) -> str:
        return self.scope

    def check_client(self, client: ClientMixin) -> bool:
        return bool(client.get_client_id() == self.client.get_client_id())

    def is_revoked(self) -> bool:
        return False  # TokenService.verify refuses revoked tokens

    def is_expired(self) -> bool:
        return False  # and expired ones
