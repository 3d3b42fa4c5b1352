"""TokenReview parsing and replies: the pure part, including hostile bodies."""

from __future__ import annotations

import json
from typing import Any

import pytest

from authsvc.identity import UserInfo
from authsvc.webhook.tokenreview import (
    Decision,
    InvalidTokenReview,
    TokenReviewRequest,
    decide,
    encode_reply,
    granted_audiences,
    parse_tokenreview,
    tokenreview_reply,
)

from .support import API_VERSIONS, V1, V1BETA1, review_body

SECRET = "s3cr3t-token-value"


def body(document: Any) -> bytes:
    return json.dumps(document).encode()


@pytest.mark.parametrize("api_version", API_VERSIONS)
def test_parses_both_versions_with_audiences(api_version: str) -> None:
    request = parse_tokenreview(body(review_body(SECRET, api_version=api_version, audiences=["a", "b"])))
    assert request == TokenReviewRequest(api_version, SECRET, ("a", "b"))


def test_what_kube_apiserver_sends_parses() -> None:
    # The shape client-go serializes: metadata with a null timestamp and an empty status.
    raw = (
        b'{"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1","metadata":{"creationTimestamp":null},'
        b'"spec":{"token":"abc.def","audiences":["https://kubernetes.default.svc"]},"status":{"user":{}}}'
    )
    assert parse_tokenreview(raw) == TokenReviewRequest(V1, "abc.def", ("https://kubernetes.default.svc",))


def _spec(**spec: Any) -> bytes:
    return body({"apiVersion": V1, "kind": "TokenReview", "spec": spec})


HOSTILE: list[tuple[str, bytes, str]] = [
    ("empty body", b"", "not valid JSON"),
    ("not JSON", b"token=" + SECRET.encode(), "not valid JSON"),
    ("truncated JSON", body(review_body(SECRET))[:-3], "not valid JSON"),
    ("invalid UTF-8", b'{"apiVersion": "\xff\xfe"}', "not valid JSON"),
    ("deeply nested", b"[" * 100_000, "not valid JSON"),
    ("huge number", b"1" * 10_000, "not valid JSON"),
    ("a list", b"[]", "JSON object"),
    ("a string", b'"TokenReview"', "JSON object"),
    ("null", b"null", "JSON object"),
    ("wrong apiVersion", body({**review_body(SECRET), "apiVersion": "authentication.k8s.io/v2"}), "apiVersion"),
    ("apiVersion a list", body({**review_body(SECRET), "apiVersion": [V1]}), "apiVersion"),
    ("no apiVersion", body({"kind": "TokenReview", "spec": {"token": SECRET}}), "apiVersion"),
    ("wrong kind", body({**review_body(SECRET), "kind": "SubjectAccessReview"}), "kind"),
    ("no spec", body({"apiVersion": V1, "kind": "TokenReview"}), "spec"),
    ("spec a string", body({"apiVersion": V1, "kind": "TokenReview", "spec": SECRET}), "spec"),
    ("no token", _spec(), "spec.token"),
    ("token null", _spec(token=None), "spec.token"),
    ("token a number", _spec(token=12345), "spec.token"),
    ("token a list", _spec(token=[SECRET]), "spec.token"),
    ("token empty", _spec(token=""), "spec.token"),
    ("token with a space", _spec(token=SECRET + " x"), "printable ASCII"),
    ("token with a newline", _spec(token=SECRET + "\n"), "printable ASCII"),
    ("token not ASCII", _spec(token=SECRET + "é"), "printable ASCII"),
    ("token with NUL", _spec(token=SECRET + "\x00"), "printable ASCII"),
    (
        "token a lone surrogate",
        b'{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":"s3cr3t-token-value\\ud800"}}',
        "printable ASCII",
    ),
    ("audiences a string", _spec(token=SECRET, audiences="api"), "spec.audiences"),
    ("audiences of numbers", _spec(token=SECRET, audiences=[1]), "spec.audiences"),
    ("audiences with an empty one", _spec(token=SECRET, audiences=[""]), "spec.audiences"),
]


@pytest.mark.parametrize(
    ("raw", "message"), [(raw, message) for _, raw, message in HOSTILE], ids=[h[0] for h in HOSTILE]
)
def test_hostile_bodies_are_refused_without_quoting_the_token(raw: bytes, message: str) -> None:
    with pytest.raises(InvalidTokenReview, match=message) as caught:
        parse_tokenreview(raw)
    assert SECRET not in str(caught.value)


def test_an_error_answers_in_the_request_version_when_it_is_known() -> None:
    with pytest.raises(InvalidTokenReview) as caught:
        parse_tokenreview(body({"apiVersion": V1BETA1, "kind": "TokenReview", "spec": {}}))
    assert caught.value.api_version == V1BETA1
    with pytest.raises(InvalidTokenReview) as unknown:
        parse_tokenreview(b"{}")
    assert unknown.value.api_version == V1


ALICE = UserInfo("alice", "u-1", ("dev",), {"example.org/team": ("blue",)}, backend="tokenfile")
SA = UserInfo("system:serviceaccount:ci:deployer", audiences=("https://kubernetes.default.svc", "vault"))


@pytest.mark.parametrize(
    ("requested", "user", "granted"),
    [
        ((), ALICE, ()),  # audience-agnostic: no audiences, the API server checks its own
        (("api",), ALICE, ()),
        ((), SA, SA.audiences),  # no request audiences: the token's own
        (("vault",), SA, ("vault",)),
        (("other", "https://kubernetes.default.svc"), SA, ("https://kubernetes.default.svc",)),
        (("other",), SA, None),  # valid for other audiences only: not authenticated
    ],
)
def test_granted_audiences(requested: tuple[str, ...], user: UserInfo, granted: tuple[str, ...] | None) -> None:
    assert granted_audiences(requested, user) == granted


@pytest.mark.parametrize("api_version", API_VERSIONS)
def test_reply_shapes(api_version: str) -> None:
    assert tokenreview_reply(api_version, user=ALICE) == {
        "apiVersion": api_version,
        "kind": "TokenReview",
        "status": {
            "authenticated": True,
            "user": {"username": "alice", "uid": "u-1", "groups": ["dev"], "extra": {"example.org/team": ["blue"]}},
        },
    }
    assert tokenreview_reply(api_version) == {
        "apiVersion": api_version,
        "kind": "TokenReview",
        "status": {"authenticated": False},
    }
    assert tokenreview_reply(api_version, error="ldap down")["status"] == {"authenticated": False, "error": "ldap down"}
    assert tokenreview_reply(api_version, user=SA, audiences=("vault",))["status"]["audiences"] == ["vault"]


def test_decide_says_no_without_an_error_and_an_outage_with_one() -> None:
    request = TokenReviewRequest(V1, SECRET, ("other",))
    assert decide(request, SA)[0] is Decision.DENY
    assert "error" not in decide(request, SA)[1]["status"]  # a definite no: the API server may cache it
    assert decide(request, None, "backend down") == (Decision.ERROR, tokenreview_reply(V1, error="backend down"))
    decision, reply = decide(TokenReviewRequest(V1, SECRET), ALICE)
    assert decision is Decision.ALLOW and reply["status"]["authenticated"] is True


def test_replies_never_carry_the_spec() -> None:
    request = TokenReviewRequest(V1, SECRET)
    for user, error in ((ALICE, None), (None, None), (None, "down")):
        assert SECRET.encode() not in encode_reply(decide(request, user, error)[1])
