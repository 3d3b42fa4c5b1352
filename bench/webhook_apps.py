"""The comparison apps of bench/webhook.py: what a TokenReview costs without authsvc.

- `flask_app`: a minimal Flask view that parses the same JSON and answers a fixed TokenReview;
- `bare_app`: the same as a bare WSGI callable (no framework at all);
- `external_jwt_app`, `user_token_app`: the yardsticks of the uncached paths, bare WSGI
  callables that parse the TokenReview, verify its JWT with PyJWT (`jwt.decode`: signature,
  `iss`, `aud`, `exp`) and answer with the `sub` and `groups` it names, or a denial. The key
  object is loaded once per process, from the files bench/webhook.py names in the environment:
  the external issuer's JWKS (`BENCH_ISSUER_JWKS`) and authsvc's own public key
  (`BENCH_USER_KEY`, pki/sa.pub, with `BENCH_USER_ISSUER`, `BENCH_USER_AUDIENCE`,
  `BENCH_USER_ALGORITHM`).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import jwt
from flask import Flask, Response, request

from pki.keys import load_public_key_pem

REPLY = json.dumps(
    {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "status": {"authenticated": True, "user": {"username": "bench", "groups": ["dev"]}},
    }
)
DENIAL = json.dumps(
    {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": {"authenticated": False}}
).encode()
EXTERNAL_ISSUER = "https://issuer.bench.invalid"
EXTERNAL_AUDIENCE = "kubernetes"

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


@functools.cache
def _external_key() -> Any:
    """The external issuer's one key, as PyJWT's key object (loaded on the first request)."""
    return jwt.PyJWKSet.from_json(Path(os.environ["BENCH_ISSUER_JWKS"]).read_text()).keys[0].key


@functools.cache
def _user_key() -> Any:
    return load_public_key_pem(Path(os.environ["BENCH_USER_KEY"]).read_bytes())


def _verified_reply(token: str, key: Any, algorithm: str, issuer: str, audience: str) -> bytes:
    try:
        claims = jwt.decode(token, key, algorithms=[algorithm], audience=audience, issuer=issuer)
    except jwt.PyJWTError:
        return DENIAL
    user = {"username": claims["sub"], "groups": claims.get("groups", [])}
    status = {"authenticated": True, "user": user}
    return json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": status}).encode()


def _answer(start_response: Callable[..., Any], body: bytes) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def _token(environ: dict[str, Any]) -> str:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    token: str = json.loads(environ["wsgi.input"].read(length))["spec"]["token"]
    return token


def external_jwt_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = _verified_reply(_token(environ), _external_key(), "ES256", EXTERNAL_ISSUER, EXTERNAL_AUDIENCE)
    return _answer(start_response, body)


def user_token_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    env = os.environ
    body = _verified_reply(
        _token(environ), _user_key(), env["BENCH_USER_ALGORITHM"], env["BENCH_USER_ISSUER"], env["BENCH_USER_AUDIENCE"]
    )
    return _answer(start_response, body)
