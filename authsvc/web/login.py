"""`POST /login`: HTTP Basic credentials in, a short-lived authsvc token out, or with a CSR in
the body (`{"certificateSigningRequest": "<PEM>"}`, application/json) a short-lived client
certificate for the CSR's key (`login.certificate_ttl`; the key never leaves the client).

200  {"token", "expirationTimestamp", "user", "groups"}, or with ?format=execcredential an
     ExecCredential (client.authentication.k8s.io/v1) that kubectl can use as is; for a CSR
     {"clientCertificateData", "expirationTimestamp", "user", "groups"} (JSON only: the
     ExecCredential needs the key, which only the client has)
400  a CSR that is not one, or not signed by its key, or whose key is too weak
401  invalid user name or password (never which of the two), with WWW-Authenticate
403  the credentials are right but the signing policy refuses the name or a group, or the
     user's access is revoked (`authsvc access revoke`)
429  too many failed logins for the user name or the client address, with Retry-After
503  a login backend (the directory, the users file, the database) cannot answer: fail closed
404  login is switched off (login.backends is empty)
"""

from __future__ import annotations

import datetime as dt
import json
import logging

from flask import Blueprint, Response, current_app, request

from authsvc.errors import AuthenticationFailed, BackendUnavailable, RateLimited
from authsvc.login.execcredential import exec_credential
from authsvc.login.service import INVALID_CREDENTIALS, IssuedLogin, LoginService, check_login_csr
from authsvc.web.app import runtime_of
from pki.errors import KeyUnavailable, PolicyError

log = logging.getLogger(__name__)

blueprint = Blueprint("login", __name__)
CHALLENGE = 'Basic realm="authsvc", charset="UTF-8"'
FORMATS = ("json", "execcredential")
CSR_MEMBER = "certificateSigningRequest"
# A CSR for a P-384 or RSA-4096 key is under 2 KiB in PEM.
MAX_CSR_BODY = 16 * 1024


@blueprint.route("/login", methods=["GET", "PUT", "PATCH", "DELETE"])
def wrong_method() -> Response:
    return _json(405, {"error": "use POST with HTTP Basic credentials"}, {"Allow": "POST"})


@blueprint.post("/login")
def login() -> Response:
    service = runtime_of(current_app).login.service
    if service is None:
        return _json(404, {"error": "login is not enabled on this server (login.backends)"})
    fmt = request.args.get("format", "json")
    if fmt not in FORMATS:
        return _json(400, {"error": f"format must be one of {', '.join(FORMATS)}"})
    auth = request.authorization
    if auth is None or auth.type != "basic":
        return _json(401, {"error": "send the user name and password with HTTP Basic"}, {"WWW-Authenticate": CHALLENGE})
    csr = _csr()
    if isinstance(csr, Response):
        return csr
    if csr is not None and fmt != "json":
        return _json(400, {"error": "a certificate comes as JSON: the ExecCredential needs the key, which is yours"})
    return _login(service, auth.username or "", auth.password or "", fmt, csr)


def _csr() -> bytes | Response | None:
    """The CSR of a JSON body, checked before any credential is (a 400 costs no login attempt).
    Any other body is ignored, as before CSRs were taken."""
    if request.mimetype != "application/json":
        return None
    if request.content_length is None or request.content_length > MAX_CSR_BODY:
        return _json(413, {"error": f"the body must be a JSON object of at most {MAX_CSR_BODY} bytes"})
    document = request.get_json(silent=True)
    pem = document.get(CSR_MEMBER) if isinstance(document, dict) else None
    if not isinstance(pem, str):
        return _json(400, {"error": f'send {{"{CSR_MEMBER}": "<PEM>"}} as application/json, or no body for a token'})
    try:
        check_login_csr(pem.encode())
    except PolicyError as e:
        return _json(400, {"error": f"invalid certificate signing request: {e}"})
    return pem.encode()


def _login(service: LoginService, username: str, password: str, fmt: str, csr: bytes | None) -> Response:
    try:
        issued = service.login(username, password, request.remote_addr or "", csr=csr)
    except AuthenticationFailed:
        return _json(401, {"error": INVALID_CREDENTIALS}, {"WWW-Authenticate": CHALLENGE})
    except RateLimited as e:
        return _json(429, {"error": str(e)}, {"Retry-After": str(e.retry_after)})
    except (BackendUnavailable, KeyUnavailable) as e:
        log.error("login failed closed: %s", e)
        return _json(503, {"error": "the login service cannot check credentials now: try again later"})
    except PolicyError as e:
        log.warning("login of %r refused by the signing policy: %s", username[:64], e)
        return _json(403, {"error": f"this account may not log in here: {e}"})
    return _json(200, _document(issued, fmt))


def _document(issued: IssuedLogin, fmt: str) -> dict[str, object]:
    expiration = rfc3339(issued.expires_at)
    if issued.certificate:
        return {
            "clientCertificateData": issued.certificate,
            "expirationTimestamp": expiration,
            "user": issued.username,
            "groups": list(issued.groups),
        }
    if fmt == "execcredential":
        return exec_credential(issued.token, expiration)
    return {
        "token": issued.token,
        "expirationTimestamp": expiration,
        "user": issued.username,
        "groups": list(issued.groups),
    }


def rfc3339(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json(status: int, document: dict[str, object], headers: dict[str, str] | None = None) -> Response:
    response = Response(json.dumps(document, separators=(",", ":")), status, content_type="application/json")
    # A token must not land in a shared cache.
    response.headers["Cache-Control"] = "no-store"
    if headers:
        response.headers.update(headers)
    return response
