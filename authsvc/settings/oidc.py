"""`oidc:` section: authsvc as an OpenID Connect provider for its own identities.

The provider's issuer is `tokens.user_issuer` (ID tokens are user tokens of a kind: same issuer,
same keys, same JWKS); its endpoints are `<server.public_url>/authorize`, `/token` and
`/userinfo`. No client configured: the provider is off (those paths answer 404).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from authsvc.settings.fields import Duration, Section

# What a client id may be: it becomes an ID token's `aud`, kube-apiserver's --oidc-client-id and
# part of a cache key, so no spaces, quotes, commas or control characters.
_CLIENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "[::1]"})


def is_loopback_redirect(uri: str) -> bool:
    """http://127.0.0.1/... or http://[::1]/... without a port: RFC 8252 section 7.3's loopback
    redirect, which a native public client may use on any port (it binds an ephemeral one)."""
    parts = urlsplit(uri)
    return parts.scheme == "http" and parts.netloc in LOOPBACK_HOSTS


def _check_redirect_uri(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.fragment or "#" in uri:
        raise ValueError(f"redirect URI {uri!r} may not have a fragment (RFC 6749 section 3.1.2)")
    if not parts.netloc or parts.scheme not in ("https", "http"):
        raise ValueError(f"redirect URI {uri!r} must be an absolute https:// URL (or http:// on a loopback address)")
    if parts.scheme == "http" and (parts.hostname or "") not in ("127.0.0.1", "::1"):
        # RFC 8252 section 8.3: "localhost" may resolve elsewhere; a code must not travel in clear.
        raise ValueError(f"redirect URI {uri!r}: plain http is allowed only on 127.0.0.1 or [::1]")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"redirect URI {uri!r} may not carry user information")
    return uri


class OIDCClientSettings(Section):
    # The client_id: the `aud` of its ID tokens (kube-apiserver's --oidc-client-id).
    id: str
    # Public clients (kubectl, `authsvc login --browser`) have no secret and must use PKCE S256;
    # confidential ones authenticate at /token with their secret.
    type: Literal["public", "confidential"] = "public"
    # Exact matches only (scheme, host, port, path and query as written). A public client's
    # http://127.0.0.1/PATH or http://[::1]/PATH (no port) matches that path on any port (RFC 8252).
    redirect_uris: tuple[str, ...] = Field(min_length=1)
    # Confidential clients: the SHA-256 (hex) of the secret, never the secret itself (generate one
    # with `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`; at least 32 characters).
    secret_sha256: str | None = None
    # Whether /token hands this client refresh tokens (rotated at each use).
    refresh_tokens: bool = True

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not _CLIENT_ID.fullmatch(value):
            raise ValueError(f"client id {value!r}: letters, digits, '.', '_', ':' and '-', at most 128")
        return value

    @field_validator("redirect_uris")
    @classmethod
    def _check_redirect_uris(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_check_redirect_uri(v) for v in values)

    @field_validator("secret_sha256")
    @classmethod
    def _check_secret_hash(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[0-9a-f]{64}", value):
            raise ValueError("secret_sha256 must be 64 lower-case hex digits (sha256sum of the secret)")
        return value

    @model_validator(mode="after")
    def _secret_matches_type(self) -> OIDCClientSettings:
        if self.type == "confidential" and self.secret_sha256 is None:
            raise ValueError(f"confidential client {self.id!r} needs secret_sha256")
        if self.type == "public" and self.secret_sha256 is not None:
            raise ValueError(f"public client {self.id!r} has no secret: drop secret_sha256 or make it confidential")
        if self.type == "confidential" and any(is_loopback_redirect(u) for u in self.redirect_uris):
            raise ValueError(f"confidential client {self.id!r}: any-port loopback redirects are for public clients")
        return self


class OIDCSettings(Section):
    # The registered clients; none: the provider is off (docs/oidc.md). Each is
    #   {id: kubernetes, type: public, redirect_uris: ["http://127.0.0.1/callback"]}   (kubectl)
    #   {id: NAME, type: confidential, redirect_uris: [https://...], secret_sha256: HEX}
    # (also `refresh_tokens: false` to hand that client no refresh tokens). Needs
    # tokens.user_issuer (the issuer) and server.public_url (where the endpoints are).
    clients: tuple[OIDCClientSettings, ...] = ()
    # An authorization code is good once, for this long (RFC 6749 section 4.1.2: at most 10 minutes).
    code_ttl: Duration = Field(dt.timedelta(seconds=60), gt=dt.timedelta(0), le=dt.timedelta(minutes=10))
    # Lifetime of ID tokens and access tokens. kube-apiserver cannot revoke an ID token, so keep it
    # short; kubectl's plugin refreshes it with the refresh token.
    id_token_ttl: Duration = Field(dt.timedelta(minutes=15), gt=dt.timedelta(0))
    # A sign-in's refresh tokens all end this long after it (then the browser again).
    refresh_ttl: Duration = Field(dt.timedelta(hours=12), gt=dt.timedelta(0))

    @field_validator("clients")
    @classmethod
    def _unique_ids(cls, clients: tuple[OIDCClientSettings, ...]) -> tuple[OIDCClientSettings, ...]:
        ids = [c.id for c in clients]
        if len(set(ids)) != len(ids):
            raise ValueError("each client id may be listed once")
        return clients

    @property
    def enabled(self) -> bool:
        return bool(self.clients)

    def client(self, client_id: str) -> OIDCClientSettings | None:
        return next((c for c in self.clients if c.id == client_id), None)

    def public_clients(self) -> tuple[OIDCClientSettings, ...]:
        return tuple(c for c in self.clients if c.type == "public")
