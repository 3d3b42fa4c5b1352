"""The self-service access page on the public listener (docs/self-service.md); authsvc/self_service/
does the work.

GET  /                          the sign-in form (signin.py's), or on to /access when signed in
POST /                          sign in: CSRF check, LoginService (the rate limits of /login), a session
GET  /access                    who you are, the clusters, the kubeconfig form, the kubectl commands
POST /access/kubeconfig         a kubeconfig as a download (KubeconfigIssuer, as `authsvc issue`)
GET  /access/credentials        what you hold (as `authsvc access list` collects it)
POST /access/credentials/revoke revoke one of your own tokens or certificates
POST /logout                    end the session

Every POST needs the CSRF double submit (signin.py). The session is a `__Host-` cookie
(Secure, HttpOnly, SameSite=Strict, Path=/) naming a row of the database (sessions.py); a banned
person's session stops at their next request. Everything answers 404 unless
`self_service.enabled`; a backend that cannot answer is a 503 page (fail closed).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import Blueprint, Response, abort, current_app, render_template, request, url_for

from authsvc.errors import BackendUnavailable, NotFound, UsageError
from authsvc.kubeconfig.documents import default_context
from authsvc.runtime import Runtime
from authsvc.self_service.credentials import KINDS, holdings, revoke_own
from authsvc.self_service.kubeconfigs import MODE_WORDS, download_name, issue_for, kubectl_commands, offered_clusters
from authsvc.self_service.sessions import Session, SessionStore
from authsvc.web.app import runtime_of
from authsvc.web.signin import (
    SECURITY_HEADERS,
    SignInRefused,
    check_credentials,
    csrf_ok,
    csrf_token,
    problem_page,
    set_csrf_cookie,
    signin_page,
)
from pki.errors import KeyUnavailable, PolicyError

log = logging.getLogger(__name__)

blueprint = Blueprint("self_service", __name__)

SESSION_COOKIE = "__Host-authsvc-session"
# The sign-in form's CSP plus this origin's one script (the copy buttons) and forms that post
# here only (no redirect to elsewhere follows a form of these pages).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
PURPOSE = "Sign in with your account to see your access and get a kubeconfig."
REVOKED_NOTICE = re.compile(r"(token|certificate|sign-in) [0-9A-Za-z:-]{1,80}")
FORM_EXPIRED = "This form was not sent by this page, or it expired: open the page again."


@blueprint.before_request
def _enabled() -> None:
    if not runtime_of(current_app).settings.self_service.enabled:
        abort(404)


@blueprint.errorhandler(BackendUnavailable)
@blueprint.errorhandler(KeyUnavailable)
def _unavailable(error: Exception) -> Response:
    log.error("self-service page failed closed: %s", error)
    return problem_page(503, "Try again later", "The service cannot answer now: try again in a minute.")


def _runtime() -> Runtime:
    return runtime_of(current_app)


def _store() -> SessionStore:
    store = _runtime().sessions
    if store is None:  # enabled settings always build one (runtime.py)
        abort(404)
    return store


def _session() -> Session | None:
    """The signed-in person, or None (no cookie, an unknown, ended or expired session, a ban)."""
    session = _store().find(request.cookies.get(SESSION_COOKIE, ""))
    if session is not None and _runtime().denylist.is_revoked_or_banned(session.username):
        log.info("self-service session of %s refused: access revoked", session.username)
        return None
    return session


def _to(endpoint: str, **values: Any) -> Response:
    """A 303 (the browser GETs the target, whatever the method of the request was)."""
    response = Response(status=303, headers={"Location": url_for(endpoint, **values)})
    return _secured(response)


def _secured(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


def _page(template: str, session: Session, status: int = 200, **values: Any) -> Response:
    token = csrf_token()
    banner = _runtime().settings.self_service.banner
    # Not `session`: Flask puts its own session object in every template under that name.
    body = render_template(template, person=session, csrf_token=token, banner=banner, **values)
    return set_csrf_cookie(_secured(Response(body, status, mimetype="text/html")), token)


def _signin(**values: Any) -> Response:
    response = signin_page(action=url_for("self_service.signin"), purpose=PURPOSE,
                           banner=_runtime().settings.self_service.banner, **values)  # fmt: skip
    return response


# --- sign-in, logout ------------------------------------------------------------------------------


@blueprint.get("/")
def signin_form() -> Response:
    if _session() is not None:
        return _to("self_service.access")
    notice = "You signed out." if request.args.get("signed_out") == "1" else ""
    return _signin(notice=notice)


@blueprint.post("/")
def signin() -> Response:
    if not csrf_ok():
        return problem_page(400, "Sign-in form expired", FORM_EXPIRED)
    username, password = request.form.get("username", ""), request.form.get("password", "")
    outcome = check_credentials(username, password)
    if isinstance(outcome, SignInRefused):
        return _signin(username=username, error=outcome.message, status=outcome.status)
    store = _store()
    store.end(request.cookies.get(SESSION_COOKIE, ""))  # a sign-in replaces the one before
    secret, session = store.start(outcome)
    service = _runtime().login.service
    if service is not None:
        service.signed_in(outcome, request.remote_addr or "", via="/ (self-service)")
    response = _to("self_service.access")
    max_age = int((session.expires_at - session.created_at).total_seconds())
    response.set_cookie(
        SESSION_COOKIE, secret, max_age=max_age, secure=True, httponly=True, samesite="Strict", path="/"
    )
    return response


@blueprint.post("/logout")
def logout() -> Response:
    if not csrf_ok():
        return problem_page(400, "Sign-out form expired", FORM_EXPIRED)
    _store().end(request.cookies.get(SESSION_COOKIE, ""))
    response = _to("self_service.signin_form", signed_out="1")
    response.delete_cookie(SESSION_COOKIE, secure=True, httponly=True, samesite="Strict", path="/")
    return response


# --- the pages ------------------------------------------------------------------------------------


@blueprint.get("/access")
def access() -> Response:
    session = _session()
    if session is None:
        return _to("self_service.signin_form")
    return _access_page(session)


def _access_page(session: Session, *, error: str = "", status: int = 200) -> Response:
    settings = _runtime().settings.self_service
    clusters = offered_clusters(_runtime().home)
    commands = [
        (c.name, kubectl_commands(download_name(c.name, session.username), default_context(session.username, c.name)))
        for c in clusters
    ]
    exec_offered = any(mode.startswith("exec") for mode in settings.modes)
    values = {"clusters": clusters, "modes": settings.modes, "mode_words": MODE_WORDS, "commands_by_cluster": commands}
    return _page("self_service_access.html", session, status, page="access", exec_offered=exec_offered, error=error,
                 **values)  # fmt: skip


@blueprint.post("/access/kubeconfig")
def kubeconfig() -> Response:
    session = _session()
    if session is None:
        return _to("self_service.signin_form")
    if not csrf_ok():
        return problem_page(400, "Form expired", FORM_EXPIRED)
    try:
        download = issue_for(_runtime().home, session, request.form.get("mode", ""), request.form.get("cluster", ""))
    except UsageError as e:
        return _access_page(session, error=f"{e}.", status=400)
    except PolicyError as e:
        log.warning("self-service kubeconfig of %s refused: %s", session.username, e)
        return _access_page(session, error="authsvc may not issue a kubeconfig for this account.", status=403)
    credential = download.issued.credential
    log.info("self-service kubeconfig for %s: %s mode, cluster %s (kubeconfig %d)",
             session.username, credential.mode.value, credential.cluster, credential.id)  # fmt: skip
    response = _secured(Response(download.body, 200, mimetype="application/yaml"))
    response.headers["Content-Disposition"] = f'attachment; filename="{download.filename}"'
    return response


@blueprint.get("/access/credentials")
def credentials() -> Response:
    session = _session()
    if session is None:
        return _to("self_service.signin_form")
    revoked = request.args.get("revoked", "")
    # Only the shape the redirect writes: a link cannot put words of its own on the page.
    notice = f"Revoked {revoked}." if REVOKED_NOTICE.fullmatch(revoked) else ""
    return _credentials_page(session, notice=notice)


def _credentials_page(session: Session, *, notice: str = "", error: str = "", status: int = 200) -> Response:
    held = holdings(_runtime().home, session.username)
    return _page("self_service_credentials.html", session, status, page="credentials", held=held,
                 notice=notice, error=error)  # fmt: skip


@blueprint.post("/access/credentials/revoke")
def revoke() -> Response:
    session = _session()
    if session is None:
        return _to("self_service.signin_form")
    if not csrf_ok():
        return problem_page(400, "Form expired", FORM_EXPIRED)
    kind, ident = request.form.get("kind", ""), request.form.get("id", "")
    if kind not in KINDS or not ident or len(ident) > 128:
        return _credentials_page(session, error="That is not a credential of yours.", status=400)
    try:
        held = revoke_own(_runtime().home, session.username, kind, ident)
    except NotFound:
        return _credentials_page(session, error="That is not a valid credential of yours.", status=404)
    log.info("self-service: %s revoked their %s %s", session.username, kind, ident)
    return _to("self_service.credentials", revoked=f"{held.kind} {held.ident}")
