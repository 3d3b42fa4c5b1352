"""Authlib's grants, completed with authsvc's storage and rules.

- AuthorizationCode: the code flow (RFC 6749 4.1). `state` and `redirect_uri` are required
  (OIDC Core 3.1.2.1 requires the latter; authsvc requires the former of every client, so a
  forged redirect can always be told from a real one); codes live in the database (store.py).
- PKCE (RFC 7636) with S256 only: `plain` is refused, and a public client must send a challenge
  at /authorize and its verifier at /token.
- RefreshToken: rotation at every use; the user is checked again (directory or users file: still
  there, same uid, groups now, allowed by the signing policy) before anything is spent, so an
  outage leaves the refresh token usable and a removed user gets nothing.
- IDToken: the OIDC extension for both grants; ID tokens are signed by TokenService (the user
  issuer's keys, recorded, policy-checked), never by a key handed to Authlib.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749 import InvalidRequestError, grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import OpenIDCode
from authlib.oidc.core.util import create_half_hash

from authsvc.oidc.models import RefreshGrant, SignedInUser, StoredCode
from authsvc.oidc.store import CodeRequest
from pki.tokens.claims import IDTokenRequest

if TYPE_CHECKING:
    from authsvc.oidc.provider import Provider

# Public clients authenticate with nothing ("none") and prove possession of the code with PKCE.
TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
MAX_STATE_LENGTH = 2048


def provider_of(grant: Any) -> Provider:
    provider: Provider = grant.server.provider
    return provider


class AuthorizationCode(grants.AuthorizationCodeGrant):  # type: ignore[misc]  # Authlib ships no type hints
    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_ENDPOINT_AUTH_METHODS

    def validate_authorization_request(self) -> str:
        state = self.request.payload.state
        if not state:
            # Refused here, before anything is redirected: a client that sends no state cannot
            # tell an answer to its own request from one an attacker started.
            raise InvalidRequestError("Missing 'state': authsvc requires it of every client.")
        if len(state) > MAX_STATE_LENGTH:
            raise InvalidRequestError("'state' is too long.")
        if not self.request.payload.redirect_uri:
            raise InvalidRequestError("Missing 'redirect_uri' (OpenID Connect requires it).", state=state)
        redirect_uri: str = super().validate_authorization_request()
        return redirect_uri

    @staticmethod
    def validate_authorization_redirect_uri(request: Any, client: Any) -> str:
        """Exact match (clients.py). Authlib's own message quotes the URI, and refuses to build an
        error whose text holds characters such as a backslash: the caller's URI is not repeated."""
        redirect_uri = request.payload.redirect_uri
        if not redirect_uri or not client.check_redirect_uri(redirect_uri):
            raise InvalidRequestError("The 'redirect_uri' is not registered for this client.")
        return str(redirect_uri)

    def save_authorization_code(self, code: str, request: Any) -> None:
        data = request.payload.data
        code_request = CodeRequest(
            client_id=request.client.get_client_id(),
            redirect_uri=request.payload.redirect_uri,
            scope=request.scope or "",
            nonce=data.get("nonce") or "",
            code_challenge=data.get("code_challenge") or "",
            code_challenge_method=data.get("code_challenge_method") or "",
        )
        provider_of(self).store.save_code(code, code_request, request.user)

    def query_authorization_code(self, code: str, client: Any) -> StoredCode | None:
        if not isinstance(code, str) or len(code) > 256:
            return None
        return provider_of(self).store.redeem_code(code, client.get_client_id())

    def delete_authorization_code(self, authorization_code: StoredCode) -> None:
        # Spent when redeemed; kept until it expires so that a replay revokes its family.
        return None

    def authenticate_user(self, authorization_code: StoredCode) -> SignedInUser:
        return authorization_code.user


class S256CodeChallenge(CodeChallenge):  # type: ignore[misc]
    """PKCE with S256 only; required of public clients."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        super().validate_code_challenge(grant, redirect_uri)
        data = grant.request.payload.data
        challenge, method = data.get("code_challenge"), data.get("code_challenge_method")
        if not challenge and grant.request.client.public:
            raise InvalidRequestError("Public clients must use PKCE: send 'code_challenge' (S256).")
        if challenge and method != "S256":
            # RFC 7636 4.3 defaults a missing method to "plain", which protects nothing against
            # an attacker who can read the authorization request.
            raise InvalidRequestError("'code_challenge_method' must be S256.")


class RefreshToken(grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_ENDPOINT_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation: every refresh token is good once

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshGrant | None:
        if not isinstance(refresh_token, str) or len(refresh_token) > 256:
            return None
        provider = provider_of(self)
        client_id = self.request.client.get_client_id()
        found = provider.store.find_refresh_token(refresh_token, client_id)
        if found is None:
            # Unknown, spent, expired or revoked: rotate_refresh_token says which, and revokes the
            # family of a spent one.
            return provider.store.rotate_refresh_token(refresh_token, client_id)
        # Raises BackendUnavailable before anything is spent: the client can retry later.
        user = provider.recheck(found.user)
        if user is None:
            provider.store.revoke_family(found.family_id, "the user may no longer sign in")
            return None
        spent = provider.store.rotate_refresh_token(refresh_token, client_id)
        return None if spent is None else replace(spent, user=user)

    def authenticate_user(self, refresh_token: RefreshGrant) -> SignedInUser:
        return refresh_token.user

    def revoke_old_credential(self, refresh_token: RefreshGrant) -> None:
        return None  # spent when it was presented (rotate_refresh_token)


class IDToken(OpenIDCode):  # type: ignore[misc]
    """ID tokens for both grants; nonces are the relying party's to check (it holds them)."""

    def __init__(self, provider: Provider) -> None:
        super().__init__(require_nonce=False)
        self.provider = provider

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        return False

    def encode_id_token(self, token: dict[str, Any], request: Any) -> str:
        code = getattr(request, "authorization_code", None)
        return self.provider.id_token(token, request.client.get_client_id(), request.user, code)


def id_token_request(
    client_id: str, user: SignedInUser, code: StoredCode | None, access_token: str | None, algorithm: str
) -> IDTokenRequest:
    at_hash = create_half_hash(access_token, algorithm) if access_token else None
    return IDTokenRequest(
        client_id=client_id,
        auth_time=user.auth_time,
        nonce=code.nonce if code is not None else "",
        at_hash=at_hash.decode("ascii") if at_hash else "",
    )
