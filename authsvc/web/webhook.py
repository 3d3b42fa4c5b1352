"""`POST /authenticate`: the TokenReview webhook that kube-apiserver calls for bearer tokens.

Thin: method, content type and size checks, parse, let the TokenReviewer answer, render.
Every answer is a TokenReview, errors included; bad input is a 4xx, never a 5xx (the API
server retries those) and never a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request
from flask.blueprints import BlueprintSetupState
from werkzeug.exceptions import BadRequest, HTTPException, RequestEntityTooLarge

from authsvc.app import services_of
from authsvc.audit import audit_of
from authsvc.authn.chain import chain_of
from authsvc.cache import ResultCache
from authsvc.metrics import metrics_for
from authsvc.reviewer import Answer, TokenReviewer
from authsvc.tokenreview import V1, InvalidTokenReview, encode_reply, parse_tokenreview, tokenreview_reply

log = logging.getLogger(__name__)

blueprint = Blueprint("webhook", __name__)
REVIEWER = "authsvc.reviewer"
# Every method reaches the view, so that a wrong one gets a TokenReview-shaped 405 too.
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
JSON = "application/json"


@blueprint.record_once
def _build_reviewer(state: BlueprintSetupState) -> None:
    app = state.app
    assert isinstance(app, Flask)
    services = services_of(app)
    authn = services.settings.authn
    cache: ResultCache[Answer] = ResultCache(
        authn.cache_ttl.total_seconds(), authn.negative_cache_ttl.total_seconds(), authn.cache_size
    )
    app.extensions[REVIEWER] = TokenReviewer(
        chain_of(services), cache, metrics_for(app), audit_of(services), services.clock
    )


@blueprint.route("/authenticate", methods=METHODS)
def authenticate() -> Response:
    reviewer: TokenReviewer = current_app.extensions[REVIEWER]
    environ = request.environ
    if environ["REQUEST_METHOD"] != "POST":
        return _refuse(reviewer, 405, "use POST", {"Allow": "POST"})
    if not _is_json(environ.get("CONTENT_TYPE", "")):
        return _refuse(reviewer, 415, "Content-Type must be application/json")
    try:
        review = parse_tokenreview(_body(environ))
    except RequestEntityTooLarge:
        return _refuse(reviewer, 413, f"request body is larger than {current_app.config['MAX_CONTENT_LENGTH']} bytes")
    except HTTPException:
        return _refuse(reviewer, 400, "request body could not be read")
    except InvalidTokenReview as e:
        return _refuse(reviewer, 400, str(e), api_version=e.api_version)
    _, body = reviewer.review(review, environ.get("REMOTE_ADDR", ""))
    return Response(body, 200, content_type=JSON)


@blueprint.errorhandler(Exception)
def _unexpected(error: Exception) -> Response | HTTPException:
    if isinstance(error, HTTPException):
        return error
    # Only the type: a message could quote the request, and the request holds a token.
    log.error("internal error answering a TokenReview: %s", type(error).__name__)
    return _json(500, tokenreview_reply(error="internal error"))


def _body(environ: dict[str, Any]) -> bytes:
    """The request body, RequestEntityTooLarge past MAX_CONTENT_LENGTH, BadRequest if unreadable.

    Read here, not by werkzeug: werkzeug does not bound a chunked body once the server says the
    input is terminated (granian does), so at most one byte past the limit is read instead.
    """
    limit: int = current_app.config["MAX_CONTENT_LENGTH"]
    stream = environ["wsgi.input"]
    declared = environ.get("CONTENT_LENGTH")
    if declared and environ.get("HTTP_TRANSFER_ENCODING", "").lower() != "chunked":
        if not declared.isdigit():
            raise BadRequest()
        if int(declared) > limit:
            raise RequestEntityTooLarge()
        body: bytes = stream.read(int(declared))
        return body
    if not environ.get("wsgi.input_terminated"):
        return b""  # no length and no end marker: nothing can be read safely (WSGI)
    body = stream.read(limit + 1)
    if len(body) > limit:
        raise RequestEntityTooLarge()
    return body


def _is_json(content_type: str) -> bool:
    return content_type.partition(";")[0].strip().lower() == "application/json"


def _refuse(
    reviewer: TokenReviewer,
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
    api_version: str = V1,
) -> Response:
    reviewer.invalid()
    response = _json(status, tokenreview_reply(api_version, error=message))
    if headers:
        response.headers.update(headers)
    return response


def _json(status: int, document: dict[str, Any]) -> Response:
    return Response(encode_reply(document), status, content_type=JSON)
