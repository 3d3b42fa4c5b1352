"""`POST /authenticate`: the TokenReview webhook that kube-apiserver calls for bearer tokens.

The blueprint installs the endpoint one layer below Flask's routing, as WSGI middleware around
`app.wsgi_app` (Flask's documented way to wrap an app): a TokenReview is answered without a
request context, URL matching or a response object. Those cost more than authsvc's whole
decision for a cached token (a bare WSGI endpoint answers ~4x the requests/s of a minimal
Flask view on the same server, bench/webhook.py), and the API server sends every token it
cannot verify itself through here. Every other path goes on to Flask.

Thin all the same: method, content type and size, parse, let the TokenReviewer answer, render.
Every answer is a TokenReview, errors included; bad input is a 4xx, never a 5xx (the API server
retries those) and never a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from flask import Blueprint, Flask
from flask.blueprints import BlueprintSetupState

from authsvc.errors import InvalidInput
from authsvc.web.app import runtime_of
from authsvc.webhook.reviewer import TokenReviewer
from authsvc.webhook.tokenreview import V1, InvalidTokenReview, encode_reply, parse_tokenreview, tokenreview_reply

log = logging.getLogger(__name__)

blueprint = Blueprint("webhook", __name__)
PATH = "/authenticate"
JSON = "application/json"
Headers = tuple[tuple[str, str], ...]
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
# A refused body up to this many times the limit is read and dropped before the 413.
DRAIN_FACTOR = 16
_STATUS_LINES = {s.value: f"{s.value} {s.phrase}" for s in HTTPStatus}


class BodyTooLarge(InvalidInput):
    pass


class UnreadableBody(InvalidInput):
    pass


@blueprint.record_once
def _install(state: BlueprintSetupState) -> None:
    app = state.app
    assert isinstance(app, Flask)
    runtime = runtime_of(app)
    endpoint = TokenReviewEndpoint(app.wsgi_app, runtime.reviewer, runtime.settings.server.max_body_bytes)
    app.wsgi_app = endpoint  # type: ignore[method-assign]


class TokenReviewEndpoint:
    """WSGI middleware: POST /authenticate answered here, everything else passed to `app`."""

    def __init__(self, app: WSGIApp, reviewer: TokenReviewer, max_body: int) -> None:
        self.app = app
        self.reviewer = reviewer
        self.max_body = max_body

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH:
            return self.app(environ, start_response)
        try:
            status, body, headers = self.answer(environ)
        except Exception as e:
            # Only the type: a message could quote the request, and the request holds a token.
            log.error("internal error answering a TokenReview: %s", type(e).__name__)
            status, body, headers = 500, encode_reply(tokenreview_reply(error="internal error")), ()
        start_response(_STATUS_LINES[status], [("Content-Type", JSON), ("Content-Length", str(len(body))), *headers])
        return [body]

    def answer(self, environ: dict[str, Any]) -> tuple[int, bytes, Headers]:
        if environ["REQUEST_METHOD"] != "POST":
            return self._refuse(405, "use POST", (("Allow", "POST"),))
        if not _is_json(environ.get("CONTENT_TYPE", "")):
            return self._refuse(415, "Content-Type must be application/json")
        try:
            review = parse_tokenreview(read_body(environ, self.max_body))
        except BodyTooLarge:
            return self._refuse(413, f"request body is larger than {self.max_body} bytes")
        except UnreadableBody:
            return self._refuse(400, "request body could not be read")
        except InvalidTokenReview as e:
            return self._refuse(400, str(e), api_version=e.api_version)
        _, body = self.reviewer.review(review, environ.get("REMOTE_ADDR", ""))
        return 200, body, ()

    def _refuse(
        self, status: int, message: str, headers: Headers = (), api_version: str = V1
    ) -> tuple[int, bytes, Headers]:
        self.reviewer.invalid()
        return status, encode_reply(tokenreview_reply(api_version, error=message)), headers


def read_body(environ: dict[str, Any], limit: int) -> bytes:
    """The request body; BodyTooLarge past `limit` (declared or chunked), UnreadableBody otherwise.

    A chunked body has no length: at most one byte past the limit is read to tell.
    """
    stream = environ["wsgi.input"]
    declared = environ.get("CONTENT_LENGTH")
    chunked = environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked"
    try:
        if declared and not chunked:
            if not declared.isdigit():
                raise UnreadableBody(declared)
            if int(declared) > limit:
                _drain(stream, int(declared), limit)
                raise BodyTooLarge()
            body: bytes = stream.read(int(declared))
            return body
        if not environ.get("wsgi.input_terminated"):
            return b""  # no length and no end marker: nothing can be read safely (PEP 3333)
        body = stream.read(limit + 1)
    except OSError as e:  # the client went away mid-body
        raise UnreadableBody(type(e).__name__) from None
    if len(body) > limit:
        raise BodyTooLarge()
    return body


def _drain(stream: Any, length: int, limit: int) -> None:
    """Read and drop a refused body that is not absurdly large, so the client can read the 413
    (a server that answers mid-upload and closes leaves the client with a reset, not an answer)."""
    if length <= DRAIN_FACTOR * limit:
        while length > 0:
            chunk = stream.read(min(length, 65536))
            if not chunk:
                return
            length -= len(chunk)


def _is_json(content_type: str) -> bool:
    return content_type.partition(";")[0].strip().lower() == JSON
