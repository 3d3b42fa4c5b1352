"""The OpenID Connect provider's endpoints on the public listener (authsvc/oidc/ does the work):

GET  /authorize   validate the client's request (Authlib), then the sign-in form
POST /authorize   the form: CSRF check, credentials through /login's LoginService, then the
                  redirect to the client with a code (or an error, once the redirect URI is known
                  to be the client's; before that, an error page: never a redirect elsewhere)
POST /token       code exchange (PKCE) and refresh (rotation), JSON
GET|POST /userinfo  who the access token names, JSON

All 404 when `oidc.clients` is empty. A backend that cannot answer (directory, database, keys)
is a 503: fail closed.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidRequestError
from flask import Blueprint, Flask, Response, abort, current_app, request
from flask.blueprints import BlueprintSetupState

from authsvc.errors import BackendUnavailable
from authsvc.oidc.models import SignedInUser
from authsvc.oidc.provider import AUTHORIZE_PATH, TOKEN_PATH, USERINFO_PATH, ProviderServer
from authsvc.web.app import runtime_of
from authsvc.web.signin import SignInRefused, check_credentials, csrf_ok, problem_page, secured, signin_page
from pki.errors import KeyUnavailable, PolicyError

log = logging.getLogger(__name__)

blueprint = Blueprint("authorize", __name__)
SERVER_EXTENSION = "authsvc.oidc_server"
# The authorization request's parameters, carried through the sign-in form as hidden fields.
CARRIED = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "login_hint",
)
PURPOSE = "{client} asks who you are: sign in with your account."


@blueprint.record_once
def _build_server(state: BlueprintSetupState) -> None:
    app = state.app
    assert isinstance(app, Flask)  # flask types the setup state's app as its sans-IO base
    provider = runtime_of(app).oidc
    app.extensions[SERVER_EXTENSION] = provider.authorization_server() if provider is not None else None


def _server() -> ProviderServer:
    server: ProviderServer | None = current_app.extensions.get(SERVER_EXTENSION)
    if server is None:
        abort(404)
    return server


def _consent_grant(server: ProviderServer) -> Any:
    """Authlib's validation of the authorization request; raises OAuth2Error."""
    try:
        return server.get_consent_grant(end_user=None)
    except ValueError as e:
        # Authlib refuses to build an error whose description would carry characters RFC 6749
        # forbids there (it quotes some parameters): the request is invalid all the same.
        raise InvalidRequestError("The request has parameters that are not valid.") from e


@blueprint.get(AUTHORIZE_PATH)
def authorize_form() -> Response:
    server = _server()
    try:
        grant = _consent_grant(server)
    except OAuth2Error as error:
        return _authorization_error(server, error)
    values = request.args
    carried = [(name, values[name]) for name in CARRIED if name in values]
    client_id = grant.request.client.get_client_id()
    return signin_page(
        action=AUTHORIZE_PATH,
        purpose=PURPOSE.format(client=client_id),
        carried=carried,
        username=values.get("login_hint", ""),
    )


@blueprint.post(AUTHORIZE_PATH)
def authorize_signin() -> Response:
    server = _server()
    if not csrf_ok():
        return problem_page(
            400, "Sign-in form expired", "This form was not sent by this page, or it expired: start the sign-in again."
        )
    try:
        grant = _consent_grant(server)
    except OAuth2Error as error:
        return _authorization_error(server, error)
    form = request.form
    username, password = form.get("username", ""), form.get("password", "")
    outcome = check_credentials(username, password)
    if isinstance(outcome, SignInRefused):
        carried = [(name, form[name]) for name in CARRIED if name in form]
        client_id = grant.request.client.get_client_id()
        return signin_page(
            action=AUTHORIZE_PATH,
            purpose=PURPOSE.format(client=client_id),
            carried=carried,
            username=username,
            error=outcome.message,
            status=outcome.status,
        )
    runtime = runtime_of(current_app)
    user = SignedInUser.of(outcome, runtime.clock())
    try:
        response = _authorized(server, grant, user)
    except OAuth2Error as error:
        return _authorization_error(server, error)
    except BackendUnavailable as e:
        log.error("authorization failed closed: %s", e)
        return problem_page(503, "Try again later", "The sign-in service cannot store the authorization now.")
    if runtime.login.service is not None:
        runtime.login.service.signed_in(outcome, request.remote_addr or "", via="/authorize")
    return secured(response)


def _authorized(server: ProviderServer, grant: Any, user: SignedInUser) -> Response:
    """The code and the redirect to the client: Authlib's create_authorization_response without
    its second validation of the request (the grant was validated above, from this very POST)."""
    try:
        status, body, headers = grant.create_authorization_response(grant.redirect_uri, user)
    except OAuth2Error as error:
        error.state = grant.request.payload.state
        raise
    response: Response = server.handle_response(status, body, headers)
    grant.execute_hook("after_authorization_response", response)
    return response


def _authorization_error(server: ProviderServer, error: OAuth2Error) -> Response:
    """Back to the client when its redirect URI was validated (Authlib sets it then), else a page."""
    if error.redirect_uri:
        response: Response = server.handle_error_response(None, error)
        return secured(response)
    message = error.description or error.error
    log.info("authorization request refused: %s (%s)", error.error, message)
    return problem_page(error.status_code or 400, "This sign-in request is not valid", f"{error.error}: {message}")


@blueprint.post(TOKEN_PATH)
def token() -> Response:
    server = _server()
    try:
        response: Response = server.create_token_response()
    except (BackendUnavailable, KeyUnavailable) as e:
        log.error("token endpoint failed closed: %s", e)
        return _json_error(503, "temporarily_unavailable", "try again later")
    except PolicyError as e:
        log.warning("token refused by the signing policy: %s", e)
        return _json_error(400, "invalid_grant", "this account may not sign in here")
    return response


@blueprint.route(USERINFO_PATH, methods=["GET", "POST"])
def userinfo() -> Response:
    server = _server()
    try:
        response: Response = server.create_endpoint_response("userinfo")
    except BackendUnavailable as e:
        log.error("userinfo failed closed: %s", e)
        return _json_error(503, "temporarily_unavailable", "try again later")
    response.headers["Cache-Control"] = "no-store"
    return response


def _json_error(status: int, error: str, description: str) -> Response:
    body = json.dumps({"error": error, "error_description": description})
    return Response(body, status, mimetype="application/json", headers={"Cache-Control": "no-store"})
