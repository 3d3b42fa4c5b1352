"""The API server behind the proxy: its URL, the TLS the proxy speaks to it, and how the proxy
says who it forwards (the mode).

- request-header mode: the proxy presents the front-proxy client certificate (signed by the
  front-proxy CA, kube-apiserver's --requestheader-client-ca-file; its CN must be in
  --requestheader-allowed-names) and names the person in the configured headers;
- impersonation mode: the proxy sends a service account's bearer token (read from a file,
  re-read when the file changes: projected tokens rotate) and names the person in
  `Impersonate-*` headers; RBAC must let that account `impersonate` users, groups and
  userextras.

Built once at start (`build_upstream`): a missing or unreadable file is a HomeError then, not
a failure at the first request.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from authsvc.errors import ConfigError, HomeError
from authsvc.identity import UserInfo
from authsvc.proxy.headers import Header, impersonation_identity, request_header_identity

if TYPE_CHECKING:
    from authsvc.home.opened import Home

# The pod's own service account token (what client-go's in-cluster config reads).
IN_CLUSTER_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
# A token file is looked at (stat) at most this often; a rotated token is used within it.
TOKEN_FILE_RECHECK_SECONDS = 1.0
REQUEST_HEADER = "request-header"
IMPERSONATION = "impersonation"


class TokenFile:
    """A bearer token kept in a file, re-read when its mtime, size or inode change."""

    def __init__(self, path: Path, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._checked_at = float("-inf")
        self._token = self._read()  # at start: a missing file is an error now, not at the first request

    def token(self) -> str:
        now = self._monotonic()
        if now - self._checked_at < TOKEN_FILE_RECHECK_SECONDS:
            return self._token
        with self._lock:
            self._checked_at = now
            try:
                stat = self.path.stat()
            except OSError:
                return self._token  # keep the last good token while the file is being replaced
            if (stat.st_mtime_ns, stat.st_size, stat.st_ino) != self._stamp:
                # An empty or unreadable file in the middle of a rotation: keep the last token.
                with contextlib.suppress(HomeError):
                    self._token = self._read()
            return self._token

    def _read(self) -> str:
        try:
            stat = self.path.stat()
            token = self.path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError) as e:
            raise HomeError(f"cannot read the proxy's service account token {self.path}: {e}") from None
        if not token or not token.isprintable() or " " in token:
            raise HomeError(f"{self.path} does not hold a bearer token (one line of printable ASCII)")
        self._stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        return token


@dataclass(frozen=True, slots=True)
class Upstream:
    """Where requests go and as whom."""

    url: str  # https://host:port[/prefix], no trailing slash
    mode: str  # REQUEST_HEADER or IMPERSONATION
    ssl_context: ssl.SSLContext
    # The person as the API server reads them (request-header or Impersonate-* headers).
    identity_headers: Callable[[UserInfo], list[Header]]
    # Header names the API server reads an identity from under its flags: stripped from clients.
    identity_names: tuple[str, ...] = ()
    # impersonation mode: the service account's token, sent as `Authorization: Bearer`.
    token: TokenFile | None = None

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 443

    @property
    def netloc(self) -> str:
        return urlsplit(self.url).netloc

    @property
    def path_prefix(self) -> str:
        return urlsplit(self.url).path.rstrip("/")

    def headers_for(self, user: UserInfo) -> list[Header]:
        """The identity headers and, in impersonation mode, the proxy's own credential."""
        headers = self.identity_headers(user)
        if self.token is not None:
            headers.append(("Authorization", f"Bearer {self.token.token()}"))
        return headers


def build_upstream(home: Home, *, mode: str | None = None, token_file: Path | None = None) -> Upstream:
    """The upstream of the home's `proxy:` settings; `mode` and `token_file` override them.

    Raises ConfigError for a setting that cannot work, HomeError for a missing file."""
    settings = home.settings.proxy
    url = (settings.upstream or home.settings.cluster.server).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ConfigError(f"proxy.upstream (or cluster.server) {url!r} must be an https:// URL of the API server")
    context = _client_context(_existing(home.layout.path(settings.upstream_ca), "proxy.upstream_ca"))
    chosen = mode or settings.mode
    if chosen == REQUEST_HEADER:
        rh = settings.request_header
        cert = _existing(home.layout.path(rh.client_cert), "proxy.request_header.client_cert")
        key = _existing(home.layout.path(rh.client_key), "proxy.request_header.client_key")
        _load_client_certificate(context, cert, key)
        names = (rh.username_header, rh.group_header, rh.extra_header_prefix)

        def identity(user: UserInfo) -> list[Header]:
            return request_header_identity(
                user,
                username_header=rh.username_header,
                group_header=rh.group_header,
                extra_header_prefix=rh.extra_header_prefix,
            )

        return Upstream(url, chosen, context, identity, names)
    if chosen == IMPERSONATION:
        path = token_file or _default_token_file(home)
        return Upstream(url, chosen, context, impersonation_identity, (), TokenFile(path))
    raise ConfigError(f"proxy.mode {chosen!r} is not request-header or impersonation")


def _default_token_file(home: Home) -> Path:
    configured = home.settings.proxy.impersonation.token_file
    if configured:
        return home.layout.path(configured)
    if IN_CLUSTER_TOKEN.is_file():
        return IN_CLUSTER_TOKEN
    raise ConfigError(
        "impersonation mode needs a service account token allowed to impersonate: set "
        "proxy.impersonation.token_file in authsvc.yaml (or pass --token-file); docs/proxy.md has the ClusterRole"
    )


def _existing(path: Path, setting: str) -> Path:
    if not path.is_file():
        raise HomeError(f"{path} ({setting}) does not exist: run `authsvc init`, or fix {setting} in authsvc.yaml")
    return path


def _client_context(ca_file: Path) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=str(ca_file))
    except (ssl.SSLError, OSError) as e:
        raise HomeError(f"cannot load the API server's CA {ca_file}: {e}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # HTTP/1.1 only: upgrades (exec, attach, port-forward) exist only there.
    context.set_alpn_protocols(["http/1.1"])
    return context


def _load_client_certificate(context: ssl.SSLContext, cert: Path, key: Path) -> None:
    from pki.store import read_private_key_file

    # A key others can read is refused, as every command that signs with one refuses it.
    if b"ENCRYPTED" in read_private_key_file(key, what="front-proxy client key")[:64]:
        raise HomeError(f"{key} is encrypted: the proxy needs the front-proxy client key in clear (mode 0600)")

    def no_passphrase() -> str:
        raise HomeError(f"{key} needs a passphrase: the proxy needs the front-proxy client key in clear")

    try:
        context.load_cert_chain(str(cert), str(key), password=no_passphrase)
    except ssl.SSLError as e:
        raise HomeError(f"cannot use {cert} and {key} as the proxy's client certificate: {e.reason}") from None
