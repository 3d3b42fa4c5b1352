"""TokenReview (authentication.k8s.io v1 and v1beta1): parsing requests and building every reply.

Pure: bytes in, values and dicts out; the HTTP layer (authsvc/web/webhook.py) renders them.
How kube-apiserver reads the answer (k8s.io/apiserver plugin/pkg/authenticator/token/webhook):

- it retries 5xx answers and connection errors, so malformed input is a 4xx, never a 5xx;
- it caches `authenticated: false` as a denial, but not an answer that carries `status.error`:
  a definite "no" carries no error, a backend outage carries one;
- when it sent `spec.audiences`, the returned `status.audiences` must intersect them; an answer
  without audiences is checked against the API server's own (implicit) audiences.

The request's spec is never echoed: it holds the token.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from authsvc.errors import InvalidInput
from authsvc.identity import UserInfo

V1 = "authentication.k8s.io/v1"
V1BETA1 = "authentication.k8s.io/v1beta1"
API_VERSIONS = (V1, V1BETA1)
KIND = "TokenReview"


_DECODER = json.JSONDecoder()


class Decision(StrEnum):
    ALLOW = "allow"  # authenticated
    DENY = "deny"  # a definite no (unknown token, wrong audience): the API server may cache it
    ERROR = "error"  # a backend could not decide: authenticated false with status.error
    INVALID = "invalid"  # the request itself was malformed (4xx)


@dataclass(frozen=True, slots=True)
class TokenReviewRequest:
    api_version: str
    token: str
    audiences: tuple[str, ...] = ()


class InvalidTokenReview(InvalidInput):
    """The body is not a TokenReview we can answer; the message never contains the token."""

    def __init__(self, message: str, api_version: str = V1) -> None:
        super().__init__(message)
        self.api_version = api_version


def parse_tokenreview(body: bytes) -> TokenReviewRequest:
    """Validate a TokenReview request body; raise InvalidTokenReview naming the first problem."""
    try:
        # UTF-8, as RFC 8259 requires between systems (json.loads would also guess UTF-16/32).
        document = _DECODER.decode(body.decode())
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError; deep nesting recurses
        raise InvalidTokenReview("request body is not valid JSON") from None
    if not isinstance(document, dict):
        raise InvalidTokenReview("request body must be a JSON object (a TokenReview)")
    api_version = document.get("apiVersion")
    if api_version not in API_VERSIONS:  # a tuple: comparing an unhashable value is safe
        raise InvalidTokenReview(f"apiVersion must be {V1} or {V1BETA1}")
    if document.get("kind") != KIND:
        raise InvalidTokenReview("kind must be TokenReview", api_version)
    spec = document.get("spec")
    if not isinstance(spec, dict):
        raise InvalidTokenReview("spec must be an object", api_version)
    return TokenReviewRequest(api_version, _token_of(spec, api_version), _audiences_of(spec, api_version))


def _token_of(spec: dict[str, Any], api_version: str) -> str:
    token = spec.get("token")
    if not isinstance(token, str) or not token:
        raise InvalidTokenReview("spec.token must be a non-empty string", api_version)
    # A bearer token comes from an HTTP header: visible ASCII without spaces.
    if not (token.isascii() and token.isprintable()) or " " in token:
        raise InvalidTokenReview("spec.token must be printable ASCII without spaces", api_version)
    return token


def _audiences_of(spec: dict[str, Any], api_version: str) -> tuple[str, ...]:
    audiences = spec.get("audiences")
    if audiences is None:
        return ()
    if not isinstance(audiences, list) or not all(isinstance(a, str) and a for a in audiences):
        raise InvalidTokenReview("spec.audiences must be a list of non-empty strings", api_version)
    return tuple(audiences)


def granted_audiences(requested: tuple[str, ...], user: UserInfo) -> tuple[str, ...] | None:
    """The audiences to answer with, or None when the token is valid for none of those requested.

    A credential without audiences (static token, bootstrap token) is audience-agnostic: the
    answer carries none and the API server checks its own implicit audiences.
    """
    if not user.audiences:
        return ()
    if not requested:
        return user.audiences
    matched = tuple(a for a in requested if a in user.audiences)
    return matched or None


def tokenreview_reply(
    api_version: str = V1,
    *,
    user: UserInfo | None = None,
    audiences: tuple[str, ...] = (),
    error: str | None = None,
) -> dict[str, Any]:
    """The one builder of every answer: success, denial, backend error and malformed request."""
    status: dict[str, Any] = {"authenticated": user is not None}
    if user is not None:
        status["user"] = user.as_tokenreview_user()
        if audiences:
            status["audiences"] = list(audiences)
    if error:
        status["error"] = error
    return {"apiVersion": api_version, "kind": KIND, "status": status}


def decide(
    request: TokenReviewRequest, user: UserInfo | None, error: str | None = None
) -> tuple[Decision, dict[str, Any]]:
    """Turn what the chain found into the decision and the reply, audiences applied."""
    if user is not None:
        audiences = granted_audiences(request.audiences, user)
        if audiences is not None:
            return Decision.ALLOW, tokenreview_reply(request.api_version, user=user, audiences=audiences)
        return Decision.DENY, tokenreview_reply(request.api_version)
    if error:
        return Decision.ERROR, tokenreview_reply(request.api_version, error=error)
    return Decision.DENY, tokenreview_reply(request.api_version)


_ENCODER = json.JSONEncoder(separators=(",", ":"))


def encode_reply(reply: dict[str, Any]) -> bytes:
    """A reply as compact JSON (one encoder for every request: json.dumps with options builds a new one)."""
    return _ENCODER.encode(reply).encode()
