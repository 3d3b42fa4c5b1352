"""The comparison apps of bench/webhook.py: what a TokenReview costs without authsvc.

- `flask_app`: a minimal Flask view that parses the same JSON and answers a fixed TokenReview;
- `bare_app`: the same as a bare WSGI callable (no framework at all).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response, request

REPLY = json.dumps(
    {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "status": {"authenticated": True, "user": {"username": "bench", "groups": ["dev"]}},
    }
)

flask_app = Flask("bench")


@flask_app.post("/authenticate")
def authenticate() -> Response:
    review = json.loads(request.get_data())
    if review.get("kind") != "TokenReview":
        return Response("{}", 400, content_type="application/json")
    return Response(REPLY, 200, content_type="application/json")


def bare_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    review = json.loads(environ["wsgi.input"].read(length))
    body = REPLY.encode() if review.get("kind") == "TokenReview" else b"{}"
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
