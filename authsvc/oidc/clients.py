"""The registered clients (`oidc.clients`), as Authlib's ClientMixin sees them.

Redirect URIs match exactly, character for character (RFC 6749 section 3.1.2.3; OAuth 2.0
Security BCP, RFC 9700 section 2.1: no prefix or pattern matching). The one relaxation is RFC
8252 section 7.3: a public client that registered `http://127.0.0.1/PATH` (or `[::1]`) without a
port may come back on any port of that loopback address, with that exact path and no query, which
is how a native app (kubectl's plugin) receives the code on an ephemeral port.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import ClientMixin, list_to_scope, scope_to_list

from authsvc.settings.oidc import LOOPBACK_HOSTS, OIDCClientSettings, is_loopback_redirect

# openid: an ID token; profile: preferred_username; groups: the groups claim; offline_access:
# accepted for clients that ask (kubelogin does); refresh tokens follow the client's settings.
SCOPES = ("openid", "profile", "groups", "offline_access")
RESPONSE_TYPES = frozenset({"code"})


@dataclass(frozen=True, slots=True)
class OIDCClient(ClientMixin):  # type: ignore[misc]  # Authlib ships no type hints
    settings: OIDCClientSettings

    @property
    def client_id(self) -> str:
        return self.settings.id

    @property
    def public(self) -> bool:
        return self.settings.type == "public"

    @property
    def client_metadata(self) -> dict[str, object]:
        return {}  # no signed userinfo, no request objects: see provider.py

    def get_client_id(self) -> str:
        return self.settings.id

    def get_default_redirect_uri(self) -> str | None:
        # Only a single, fixed URI can stand in for a missing redirect_uri; a loopback pattern cannot.
        uris = self.settings.redirect_uris
        if len(uris) == 1 and not (self.public and is_loopback_redirect(uris[0])):
            return uris[0]
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return ""
        return str(list_to_scope([s for s in scope_to_list(scope) if s in SCOPES]))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri_matches(self.settings.redirect_uris, redirect_uri, loopback_any_port=self.public)

    def check_client_secret(self, client_secret: str) -> bool:
        expected = self.settings.secret_sha256
        if expected is None or not client_secret:
            return False
        digest = hashlib.sha256(client_secret.encode("utf-8", "surrogatepass")).hexdigest()
        return hmac.compare_digest(digest, expected)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.public:
            return method == "none"
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type in RESPONSE_TYPES

    def check_grant_type(self, grant_type: str) -> bool:
        if grant_type == "refresh_token":
            return self.settings.refresh_tokens
        return grant_type == "authorization_code"


def redirect_uri_matches(registered: Iterable[str], requested: str, *, loopback_any_port: bool) -> bool:
    """`requested` is one of `registered` exactly, or (public clients) a loopback redirect with a port."""
    if requested in registered:
        return True
    if not loopback_any_port or not requested.startswith("http://"):  # urlsplit would lower-case the scheme
        return False
    parts = urlsplit(requested)
    try:
        port, hostname = parts.port, parts.hostname
    except ValueError:  # a port that is not a number, or out of range
        return False
    host = "[::1]" if hostname == "::1" else hostname
    if parts.scheme != "http" or host not in LOOPBACK_HOSTS or port is None or not 0 < port < 65536:
        return False
    # The netloc exactly as rebuilt: no user information, no leading zeros, no upper case.
    if parts.netloc != f"{host}:{port}" or parts.query or parts.fragment or "#" in requested:
        return False
    without_port = f"http://{host}{parts.path}"
    return any(is_loopback_redirect(uri) and uri == without_port for uri in registered)


class ClientRegistry:
    """The configured clients by id."""

    def __init__(self, clients: Iterable[OIDCClientSettings]) -> None:
        self._clients: Mapping[str, OIDCClient] = {c.id: OIDCClient(c) for c in clients}

    def __call__(self, client_id: str | None) -> OIDCClient | None:
        """Authlib's `query_client`."""
        return self._clients.get(client_id) if isinstance(client_id, str) else None

    def __len__(self) -> int:
        return len(self._clients)
