"""The browser sign-in, shared by every page that asks for a password (/authorize today; the
self-service page builds on it): the form, its CSRF defence, the security headers, and the
credential check through the one LoginService that /login uses (same backends, rate limits,
refusals, metrics and log lines).

CSRF: a double-submit token. The form's GET sets a random value in a `__Host-` cookie (Secure,
HttpOnly, SameSite=Strict, Path=/, no Domain: no other host, not even a sub-domain, can set or
overwrite it) and repeats it in a hidden field; a POST is taken only when both are present and
equal (constant-time), and when its Origin header, if the browser sent one, is the configured
public URL's. Nothing is kept on the server, so replicas need no shared secret for it.

The pages are plain server-rendered HTML (templates/, static/), no scripts, no external assets:
Content-Security-Policy `default-src 'none'` with the stylesheet from this origin only.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, render_template, request

from authsvc.errors import AuthenticationFailed, BackendUnavailable, RateLimited
from authsvc.login.backends import LoginIdentity
from authsvc.login.service import INVALID_CREDENTIALS
from authsvc.web.app import runtime_of
from pki.errors import KeyUnavailable, PolicyError

log = logging.getLogger(__name__)

# Serves the templates and the stylesheet of every sign-in page.
blueprint = Blueprint(
    "signin", __name__, template_folder="templates", static_folder="static", static_url_path="/assets"
)

CSRF_COOKIE = "__Host-authsvc-csrf"
CSRF_FIELD = "csrf_token"
CSRF_MAX_AGE_SECONDS = 3600
# No `form-action`: Chrome applies it to the redirect that follows the form's POST, and the
# redirect goes to the client (a loopback port chosen at run time).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # The sign-in URL carries the client's state and PKCE challenge, the redirect a code: no
    # Referer leaves this origin. Not `no-referrer`: browsers then send `Origin: null` with the
    # form's POST, and the CSRF check wants this origin there.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
}


@dataclass(frozen=True, slots=True)
class SignInRefused:
    """Why a sign-in did not go through: the HTTP status and the one line the page shows."""

    status: int
    message: str


def secured(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


def csrf_token() -> str:
    """The token of the browser's CSRF cookie, or a new one (set by `signin_page`)."""
    current = request.cookies.get(CSRF_COOKIE, "")
    return current if 32 <= len(current) <= 128 else secrets.token_urlsafe(32)


def csrf_ok() -> bool:
    """The POST carries the cookie's token in the form, and comes from this site."""
    cookie, field = request.cookies.get(CSRF_COOKIE, ""), request.form.get(CSRF_FIELD, "")
    if not cookie or not field or not hmac.compare_digest(cookie.encode(), field.encode()):
        return False
    origin = request.headers.get("Origin")
    return origin is None or origin == _public_origin()


def _public_origin() -> str:
    public_url = runtime_of(current_app).settings.server.public_url or ""
    parts = urlsplit(public_url)
    return f"{parts.scheme}://{parts.netloc}"


def set_csrf_cookie(response: Response, token: str) -> Response:
    """The cookie half of the double submit (the form carries the other half)."""
    response.set_cookie(
        CSRF_COOKIE, token, max_age=CSRF_MAX_AGE_SECONDS, secure=True, httponly=True, samesite="Strict", path="/"
    )
    return response


def signin_page(
    *,
    action: str,
    purpose: str,
    carried: Sequence[tuple[str, str]] = (),
    username: str = "",
    error: str = "",
    status: int = 200,
    banner: str = "",
    notice: str = "",
) -> Response:
    """The sign-in form; `carried` are hidden fields posted back with it (e.g. the OAuth request);
    `banner` is the operator's text above it, `notice` a one-line status (e.g. "You signed out.")."""
    token = csrf_token()
    body = render_template(
        "signin.html",
        action=action,
        purpose=purpose,
        carried=carried,
        username=username[:256],
        error=error,
        csrf_token=token,
        banner=banner,
        notice=notice,
    )
    return set_csrf_cookie(secured(Response(body, status, mimetype="text/html")), token)


def problem_page(status: int, title: str, message: str) -> Response:
    body = render_template("problem.html", title=title, message=message)
    return secured(Response(body, status, mimetype="text/html"))


def check_credentials(username: str, password: str) -> LoginIdentity | SignInRefused:
    """The identity behind a user name and password, through /login's LoginService; the signing
    policy applies as to /login's tokens. The caller counts the success (`signed_in`) once it
    has handed something out."""
    runtime = runtime_of(current_app)
    service = runtime.login.service
    if service is None:
        return SignInRefused(404, "Signing in is not enabled on this server (login.backends).")
    try:
        identity = service.verify_credentials(username, password, request.remote_addr or "")
        runtime.home.stores.ban_gate.check_now(identity.username)  # revoked a moment ago counts
        runtime.home.stores.token_service.check_policy(identity.username, identity.groups)
    except AuthenticationFailed:
        return SignInRefused(401, INVALID_CREDENTIALS[0].upper() + INVALID_CREDENTIALS[1:] + ".")
    except RateLimited as e:
        return SignInRefused(429, f"Too many failed sign-ins: try again in {e.retry_after} seconds.")
    except (BackendUnavailable, KeyUnavailable) as e:
        log.error("sign-in failed closed: %s", e)
        return SignInRefused(503, "The sign-in service cannot check credentials now: try again later.")
    except PolicyError as e:
        log.warning("sign-in of %r refused by the signing policy: %s", username[:64], e)
        return SignInRefused(403, "This account may not sign in here.")
    return identity
