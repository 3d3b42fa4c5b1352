"""The OpenID Connect provider: Authlib's Flask authorization server with authsvc's clients,
storage, tokens and identity checks plugged in.

Built once per process (authsvc/runtime.py) when `oidc.clients` is set. The web layer
(authsvc/web/authorize.py) hands it the requests of /authorize, /token and /userinfo.

What each token is:
- the **ID token**: a JWT under the user issuer (`tokens.user_issuer`) for one client (`aud` =
  client id), with `sub` = user name and `groups`; what kube-apiserver's --oidc-* flags verify;
- the **access token**: 256 random bits for /userinfo, stored as a SHA-256 beside the refresh
  token; it dies with its family (not a JWT: nothing but /userinfo takes it, and a second RS256
  signature per exchange would double the cost of /token for no reader);
- the **refresh token**: 256 random bits, stored as a SHA-256, rotated at each use.

Request objects (`request`, `request_uri`, RFC 9101) are refused with `request_not_supported` /
`request_uri_not_supported` through Authlib's own extension: authsvc's clients are native apps
without keys, so a request object could only be unsigned (`alg: none`) or signed with a secret
the server must hold in clear (HS256): neither adds anything, both widen what an attacker controls.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oauth2.rfc9101 import JWTAuthenticationRequest
from authlib.oidc.core import UserInfo, UserInfoEndpoint

from authsvc.authn.base import IdentityRefresher
from authsvc.identity import UserInfo as KubeUserInfo
from authsvc.oidc.clients import SCOPES, ClientRegistry, OIDCClient
from authsvc.oidc.grants import AuthorizationCode, IDToken, RefreshToken, S256CodeChallenge, id_token_request
from authsvc.oidc.models import PresentedAccessToken, RefreshGrant, SignedInUser, StoredCode
from authsvc.oidc.store import OIDCStore
from authsvc.settings.oidc import OIDCSettings
from pki.tokens import TokenService

if TYPE_CHECKING:
    from authsvc.home.opened import Home

AUTHORIZE_PATH, TOKEN_PATH, USERINFO_PATH = "/authorize", "/token", "/userinfo"


class Provider:
    """What the provider's endpoints share: clients, storage, tokens and the identity re-check."""

    def __init__(
        self,
        settings: OIDCSettings,
        *,
        issuer: str,
        public_url: str,
        user_audience: str,
        store: OIDCStore,
        token_service: TokenService,
        refreshers: Mapping[str, IdentityRefresher],
    ) -> None:
        self.settings = settings
        self.issuer = issuer  # tokens.user_issuer: the `iss` of the ID tokens (signed by TokenService)
        self.base_url = public_url.rstrip("/")
        self.user_audience = user_audience
        self.clients = ClientRegistry(settings.clients)
        self.store = store
        self.token_service = token_service
        self.refreshers = refreshers

    def authorization_server(self) -> ProviderServer:
        """A fresh Authlib server for one Flask app (it keeps per-app hooks)."""
        return ProviderServer(self)

    # -- tokens -----------------------------------------------------------------------------

    def generate_token(
        self,
        grant_type: str,
        client: OIDCClient,
        user: SignedInUser,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        """Authlib's token generator: an access token and (for clients that take one) a refresh
        token, both random; the ID token is added by the OIDC extension (grants.IDToken)."""
        token: dict[str, Any] = {
            "token_type": "Bearer",
            "access_token": secrets.token_urlsafe(32),
            "expires_in": int(self.settings.id_token_ttl.total_seconds()),
            "scope": scope or "",
        }
        if include_refresh_token:
            token["refresh_token"] = secrets.token_urlsafe(32)
        return token

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        started: StoredCode | RefreshGrant = request.authorization_code or request.refresh_token
        expires_at = self.token_service.clock() + self.settings.id_token_ttl
        self.store.record_issue(started, token["access_token"], expires_at, token.get("refresh_token"))

    def id_token(self, token: dict[str, Any], client_id: str, user: SignedInUser, code: StoredCode | None) -> str:
        algorithm = self.token_service.signing_algorithm
        request = id_token_request(client_id, user, code, token.get("access_token"), algorithm)
        issued = self.token_service.issue_id_token(
            user.username, user.groups, request, ttl=self.settings.id_token_ttl, uid=user.uid, source=user.source
        )
        return issued.token

    # -- identity -----------------------------------------------------------------------------

    def recheck(self, user: SignedInUser) -> SignedInUser | None:
        """The user as their login backend sees them now (groups included), or None when they may
        no longer sign in. Raises BackendUnavailable when the backend cannot say."""
        refresher = self.refreshers.get(user.source)
        if refresher is None:  # the backend that vouched is no longer configured
            return None
        now = refresher(KubeUserInfo(user.username, user.uid, user.groups))
        if now is None:
            return None
        return SignedInUser(now.username, now.uid, now.groups, user.source, user.auth_time)

    def access_token(self, token: str) -> PresentedAccessToken | None:
        """The access token behind a bearer token at /userinfo, or None. Raises BackendUnavailable."""
        if not token or len(token) > 256:
            return None
        found = self.store.find_access_token(token)
        if found is None:
            return None
        client_id, scope, user = found
        client = self.clients(client_id)
        return None if client is None else PresentedAccessToken(client, scope, user)

    # -- discovery ----------------------------------------------------------------------------

    def endpoint(self, path: str) -> str:
        return self.base_url + path

    def metadata(self) -> dict[str, Any]:
        """What discovery adds for the provider (OpenID Connect Discovery 1.0 section 3)."""
        return {
            "authorization_endpoint": self.endpoint(AUTHORIZE_PATH),
            "token_endpoint": self.endpoint(TOKEN_PATH),
            "userinfo_endpoint": self.endpoint(USERINFO_PATH),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": list(SCOPES),
            "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
            "claims_supported": [
                "iss",
                "sub",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "preferred_username",
                "groups",
            ],
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
            "claims_parameter_supported": False,
        }


class ProviderServer(AuthorizationServer):  # type: ignore[misc]  # Authlib ships no type hints
    """Authlib's Flask authorization server for one app, wired to a Provider."""

    def __init__(self, provider: Provider) -> None:
        super().__init__(query_client=provider.clients, save_token=provider.save_token)
        self.provider = provider
        self.scopes_supported = list(SCOPES)
        self.register_token_generator("default", provider.generate_token)
        id_token = IDToken(provider)
        self.register_grant(AuthorizationCode, [S256CodeChallenge(required=True), id_token])
        self.register_grant(RefreshToken, [id_token])
        self.register_extension(RequestObjectsRefused())
        protector = ResourceProtector()
        protector.register_token_validator(AccessTokenValidator(provider.access_token))
        self.register_endpoint(ProviderUserInfo(resource_protector=protector))


class ProviderUserInfo(UserInfoEndpoint):  # type: ignore[misc]
    """/userinfo: who the access token names (unsigned JSON)."""

    def generate_user_info(self, user: SignedInUser, scope: str) -> UserInfo:
        return UserInfo(sub=user.username, preferred_username=user.username, groups=list(user.groups))


class AccessTokenValidator(BearerTokenValidator):  # type: ignore[misc]
    def __init__(self, find: Callable[[str], PresentedAccessToken | None]) -> None:
        super().__init__()
        self.find = find

    def authenticate_token(self, token_string: str) -> PresentedAccessToken | None:
        return self.find(token_string)


class RequestObjectsRefused(JWTAuthenticationRequest):  # type: ignore[misc]
    """RFC 9101 request objects: neither by value nor by reference (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__(support_request=False, support_request_uri=False)

    def get_client_require_signed_request_object(self, client: OIDCClient) -> bool:
        return False

    def get_server_metadata(self) -> dict[str, Any]:
        return {}


# Authlib logs whole token responses at DEBUG ("Issue token %r to %r": access, ID and refresh
# tokens in clear). Tokens never reach a log (authsvc logs a hash prefix), whatever the level.
AUTHLIB_LOG_LEVEL = logging.INFO


def build_provider(home: Home, refreshers: Mapping[str, IdentityRefresher]) -> Provider | None:
    """The provider for a server process, or None when `oidc.clients` is empty."""
    logging.getLogger("authlib").setLevel(AUTHLIB_LOG_LEVEL)
    settings = home.settings
    if not settings.oidc.enabled or settings.tokens.user_issuer is None or settings.server.public_url is None:
        return None  # the settings refuse clients without both (authsvc/settings/__init__.py)
    store = OIDCStore(
        home.stores.engine,
        home.clock,
        code_ttl=settings.oidc.code_ttl,
        refresh_ttl=settings.oidc.refresh_ttl,
    )
    return Provider(
        settings.oidc,
        issuer=settings.tokens.user_issuer,
        public_url=settings.server.public_url,
        user_audience=settings.tokens.user_audience,
        store=store,
        token_service=home.stores.token_service,
        refreshers=refreshers,
    )
