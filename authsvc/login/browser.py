"""`authsvc login --browser`: the kubelogin flow against authsvc's OpenID Connect provider.

    cached ID token valid for more than a minute   -> print it (no network)
    else a cached refresh token                     -> POST /token (rotation: the new one is cached)
    else                                            -> the browser: authorization code flow with PKCE
        discovery from --issuer (issuer must match) -> a loopback listener on 127.0.0.1, any port
        -> open the system browser on /authorize (and print the URL on stderr, for a browser
        elsewhere) -> the code comes back to the listener (state checked) -> POST /token with the
        PKCE verifier -> the ID token's iss, aud, nonce and exp checked -> cached, printed

The ID token is what kubectl sends; kube-apiserver verifies it with its --oidc-* flags. This side
reads its claims without checking the signature: it came straight from the token endpoint over
verified TLS (OpenID Connect Core 1.0 section 3.1.3.7, item 6), and kube-apiserver checks it.

The cache is `authsvc login`'s (client.py), under the same lock held from read to write, so
kubectl commands started together make one sign-in: the others wait and find its tokens. An entry
is keyed by issuer and client id and also holds the refresh token and the token endpoint; the
file is 0600 in a 0700 folder. Standard library only on the cached path; the rest imports when
it runs.
"""

# os.path, as client.py: this module is on kubectl's path before every command.
# ruff: noqa: PTH103

from __future__ import annotations

import json
import os

from authsvc.login.client import (
    EXPIRY_MARGIN_SECONDS,
    HTTP_TIMEOUT_SECONDS,
    CacheLock,
    LoginError,
    LoginOptions,
    cache_dir,
    read_cache,
    write_cache,
)
from authsvc.login.execcredential import exec_credential

TYPE_CHECKING = False  # typing costs ~4 ms to import; mypy treats this name as True
if TYPE_CHECKING:
    from typing import Any

DISCOVERY_SUFFIX = "/.well-known/openid-configuration"
CALLBACK_PATH = "/callback"
SCOPE = "openid profile groups offline_access"
# How long the listener waits for the browser to come back.
SIGN_IN_TIMEOUT_SECONDS = 300


def cache_key(issuer: str, client_id: str) -> str:
    return f"oidc {issuer} {client_id}"


def browser_login(options: LoginOptions, issuer: str, client_id: str) -> dict[str, object]:
    """The ExecCredential with an ID token for `client_id`: cached, refreshed, or from the browser."""
    if not issuer.lower().startswith("https://"):
        raise LoginError(f"--issuer {issuer!r} must be an https:// URL")
    if not client_id:
        raise LoginError("--client-id is required with --browser")
    directory = cache_dir(options.environ)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    with CacheLock(directory):
        cache = read_cache(directory)
        server = cache["servers"].setdefault(cache_key(issuer, client_id), {"last_user": "", "tokens": {}})
        cached = server["tokens"].get("")
        if cached and cached["expires"] - EXPIRY_MARGIN_SECONDS > options.now():
            return exec_credential(cached["token"], cached["expirationTimestamp"])
        entry = refreshed(options, issuer, client_id, cached) if cached else None
        if entry is None:
            entry = signed_in(options, issuer, client_id)
        server["tokens"][""] = entry
        write_cache(directory, cache)
    return exec_credential(entry["token"], entry["expirationTimestamp"])


# -- refresh --------------------------------------------------------------------------------


def refreshed(options: LoginOptions, issuer: str, client_id: str, cached: dict[str, Any]) -> dict[str, Any] | None:
    """A new entry from the cached refresh token, or None when the provider refuses it (sign in again)."""
    refresh_token, token_endpoint = cached.get("refresh_token"), cached.get("token_endpoint")
    if not isinstance(refresh_token, str) or not isinstance(token_endpoint, str) or not refresh_token:
        return None
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}
    status, document = post_form(options, token_endpoint, form)
    if status != 200:
        if status >= 500:  # the provider cannot answer now: do not throw the refresh token away
            raise LoginError(f"cannot refresh the token: {token_endpoint} answered HTTP {status}{_detail(document)}")
        return None
    return cache_entry(document, issuer, client_id, None, token_endpoint)


# -- the browser ----------------------------------------------------------------------------


def signed_in(options: LoginOptions, issuer: str, client_id: str) -> dict[str, Any]:
    import base64
    import hashlib
    import secrets
    import urllib.parse

    config = discovery(options, issuer)
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    with LoopbackListener(state) as listener:
        params = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": listener.redirect_uri,
            "scope": SCOPE,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        if options.username:
            params["login_hint"] = options.username
        url = config["authorization_endpoint"] + "?" + urllib.parse.urlencode(params)
        options.stderr.write(f"Open this URL in a browser to sign in (waiting for it on {listener.redirect_uri}):\n")
        options.stderr.write(url + "\n")
        options.stderr.flush()
        open_browser(url, options.environ)
        code = listener.wait(SIGN_IN_TIMEOUT_SECONDS)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": listener.redirect_uri,
        "client_id": client_id,
        "code_verifier": verifier,
    }
    status, document = post_form(options, config["token_endpoint"], form)
    if status != 200:
        raise LoginError(f"the code exchange failed: HTTP {status}{_detail(document)}")
    return cache_entry(document, issuer, client_id, nonce, config["token_endpoint"])


def open_browser(url: str, environ: Any) -> None:
    """The system browser (Python's webbrowser: $BROWSER, xdg-open, ...); the URL is printed anyway."""
    if environ.get("AUTHSVC_NO_BROWSER"):
        return
    import contextlib
    import webbrowser

    with contextlib.suppress(webbrowser.Error):
        webbrowser.open(url, new=1)


def discovery(options: LoginOptions, issuer: str) -> dict[str, str]:
    """The provider's endpoints from `{issuer}/.well-known/openid-configuration`, whose `issuer`
    must be the one asked for (OpenID Connect Discovery 1.0 section 4.3)."""
    url = issuer.rstrip("/") + DISCOVERY_SUFFIX
    status, document = request_json(options, "GET", url, None)
    if status != 200:
        raise LoginError(f"cannot read the provider's discovery document {url}: HTTP {status}")
    if document.get("issuer") != issuer:
        raise LoginError(f"{url} names issuer {document.get('issuer')!r}, not {issuer!r}: refusing it")
    endpoints = {}
    for name in ("authorization_endpoint", "token_endpoint"):
        value = document.get(name)
        if not isinstance(value, str) or not value.lower().startswith("https://"):
            raise LoginError(f"{url} has no https {name}: is {issuer} an OpenID Connect provider?")
        endpoints[name] = value
    if "S256" not in (document.get("code_challenge_methods_supported") or []):
        raise LoginError(f"{issuer} does not support PKCE with S256")
    return endpoints


def cache_entry(
    document: dict[str, Any], issuer: str, client_id: str, nonce: str | None, token_endpoint: str
) -> dict[str, Any]:
    """The cache entry for a token response, after checking what its ID token says."""
    import datetime as dt

    import jwt

    id_token = document.get("id_token")
    if not isinstance(id_token, str) or not id_token:
        raise LoginError("the provider answered without an ID token (is the scope openid allowed?)")
    try:
        # Not verified here on purpose (see the module docstring): kube-apiserver verifies it.
        claims = jwt.decode(id_token, options={"verify_signature": False})
    except jwt.PyJWTError as e:
        raise LoginError(f"the provider's ID token is not a JWT: {e}") from None
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience if isinstance(audience, list) else []
    if claims.get("iss") != issuer or client_id not in audiences:
        raise LoginError(f"the ID token is for {claims.get('iss')!r} / {audience!r}, not {issuer!r} / {client_id!r}")
    if nonce is not None and claims.get("nonce") != nonce:
        raise LoginError("the ID token's nonce is not the one this sign-in sent: refusing it")
    expires = claims.get("exp")
    if not isinstance(expires, int) or isinstance(expires, bool):
        raise LoginError("the ID token has no expiry")
    stamp = dt.datetime.fromtimestamp(expires, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    entry: dict[str, Any] = {"token": id_token, "expirationTimestamp": stamp, "expires": expires}
    refresh_token = document.get("refresh_token")
    if isinstance(refresh_token, str) and refresh_token:
        entry.update(refresh_token=refresh_token, token_endpoint=token_endpoint)
    return entry


# -- HTTP -----------------------------------------------------------------------------------


def post_form(options: LoginOptions, url: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
    import urllib.parse

    return request_json(options, "POST", url, urllib.parse.urlencode(form).encode())


def request_json(options: LoginOptions, method: str, url: str, body: bytes | None) -> tuple[int, dict[str, Any]]:
    """One request over verified TLS (the CA as `authsvc login` finds it); status and JSON body."""
    import http.client
    import urllib.parse

    from authsvc.login.client import tls_context

    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https":
        raise LoginError(f"{url} is not an https:// URL")
    connection = http.client.HTTPSConnection(
        parts.hostname or "", parts.port or 443, context=tls_context(options), timeout=HTTP_TIMEOUT_SECONDS
    )
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        connection.request(method, parts.path + ("?" + parts.query if parts.query else ""), body, headers)
        response = connection.getresponse()
        data = response.read(1 << 20)
    except OSError as e:
        raise LoginError(f"cannot reach {url}: {e}") from None
    finally:
        connection.close()
    try:
        document = json.loads(data)
    except ValueError:
        document = {}
    return response.status, document if isinstance(document, dict) else {}


def _detail(document: dict[str, Any]) -> str:
    error, description = document.get("error"), document.get("error_description")
    text = " ".join(str(part) for part in (error, description) if part)
    return f": {text[:200]}" if text else ""


# -- the loopback listener (RFC 8252 section 7.3) ---------------------------------------------


class LoopbackListener:
    """An HTTP listener on 127.0.0.1 (a port the system picks) that takes one redirect to
    /callback carrying the expected state, and tells the browser it may close the tab."""

    def __init__(self, state: str) -> None:
        import http.server

        listener = self
        self.state = state
        self.result: tuple[str, str] | None = None  # ("code", value) or ("error", text)

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                listener.answer(self)

            def log_message(self, format: str, *args: Any) -> None:
                return  # stderr belongs to kubectl's user: no access log there

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.redirect_uri = f"http://127.0.0.1:{self.server.server_address[1]}{CALLBACK_PATH}"

    def __enter__(self) -> LoopbackListener:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.server_close()

    def wait(self, timeout: float) -> str:
        import time

        deadline = time.monotonic() + timeout
        while self.result is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LoginError(f"no sign-in came back within {int(timeout)} seconds")
            self.server.timeout = remaining
            self.server.handle_request()
        kind, value = self.result
        if kind == "error":
            raise LoginError(f"sign-in failed: {value}")
        return value

    def answer(self, handler: Any) -> None:
        import urllib.parse

        parts = urllib.parse.urlsplit(handler.path)
        if parts.path != CALLBACK_PATH:
            self._reply(handler, 404, "Not found.")
            return
        query = urllib.parse.parse_qs(parts.query)
        state = (query.get("state") or [""])[0]
        if state != self.state:
            # A stale tab or someone else's redirect: not this sign-in. Keep waiting for ours.
            self._reply(handler, 400, "This sign-in answer is not for the running `authsvc login`.")
            return
        if "error" in query:
            text = " ".join(query.get("error", []) + query.get("error_description", []))[:200]
            self.result = ("error", text)
            self._reply(handler, 200, f"Sign-in failed: {text}. You may close this tab.")
            return
        code = (query.get("code") or [""])[0]
        if not code:
            self._reply(handler, 400, "The answer carries no code.")
            return
        self.result = ("code", code)
        self._reply(handler, 200, "Signed in: you may close this tab and return to the terminal.")

    @staticmethod
    def _reply(handler: Any, status: int, message: str) -> None:
        import html

        body = (
            '<!doctype html><html lang="en"><meta charset="utf-8"><title>authsvc login</title>'
            f"<p>{html.escape(message)}</p></html>"
        ).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "text/html; charset=utf-8")
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("Cache-Control", "no-store")
        handler.send_header("Referrer-Policy", "no-referrer")
        handler.end_headers()
        handler.wfile.write(body)
