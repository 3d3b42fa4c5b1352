"""The webhook app through Flask's test client: status codes, versions, audiences, cache, metrics, audit."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from pathlib import Path

import pytest

from authsvc.authn.chain import AuthenticatorChain
from authsvc.identity import UserInfo
from pki.clock import FixedClock

from .support import API_VERSIONS, V1, V1BETA1, FakeBackend, WebhookApp, review_body, small_home, webhook_app

TOKENS = 'static-token-1,alice,u-1,"dev,ops"\n'
SA = UserInfo("system:serviceaccount:ci:deployer", groups=("system:serviceaccounts",), audiences=("api", "vault"))


@pytest.fixture
def webhook(tmp_path: Path, clock: FixedClock) -> WebhookApp:
    home = small_home(tmp_path / "home", clock, authn={"tokenfile": {"path": "tokens.csv"}})
    (home.root / "tokens.csv").write_text(TOKENS)
    return webhook_app(home)


@pytest.fixture
def backends() -> tuple[FakeBackend, FakeBackend]:
    return FakeBackend("ldap"), FakeBackend("authsvc", {"sa-token": SA})


@pytest.fixture
def faked(tmp_path: Path, clock: FixedClock, backends: tuple[FakeBackend, FakeBackend]) -> WebhookApp:
    return webhook_app(small_home(tmp_path / "home", clock), AuthenticatorChain(backends))


@pytest.mark.parametrize("api_version", API_VERSIONS)
def test_static_token_in_both_versions(webhook: WebhookApp, api_version: str) -> None:
    response = webhook.review("static-token-1", api_version=api_version)
    assert response.status_code == 200
    assert response.content_type == "application/json"
    assert response.get_json() == {
        "apiVersion": api_version,
        "kind": "TokenReview",
        "status": {"authenticated": True, "user": {"username": "alice", "uid": "u-1", "groups": ["dev", "ops"]}},
    }


@pytest.mark.parametrize("api_version", API_VERSIONS)
def test_unknown_token_is_a_plain_no(webhook: WebhookApp, api_version: str) -> None:
    response = webhook.review("unknown-token", api_version=api_version)
    assert response.status_code == 200
    assert response.get_json() == {"apiVersion": api_version, "kind": "TokenReview", "status": {"authenticated": False}}


def test_json_with_charset_is_accepted(webhook: WebhookApp) -> None:
    response = webhook.client.post(
        "/authenticate",
        data=json.dumps(review_body("static-token-1")),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200 and response.get_json()["status"]["authenticated"] is True


def _refusal(response: object) -> str:
    document = response.get_json()  # type: ignore[attr-defined]
    assert document["kind"] == "TokenReview" and document["status"]["authenticated"] is False
    error: str = document["status"]["error"]
    return error


def test_wrong_method_is_405_with_allow(webhook: WebhookApp) -> None:
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        response = webhook.client.open("/authenticate", method=method)
        assert response.status_code == 405 and response.headers["Allow"] == "POST"
        assert "POST" in _refusal(response)


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/jsonx"])
def test_wrong_content_type_is_415(webhook: WebhookApp, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = webhook.client.post("/authenticate", data=json.dumps(review_body("t")), headers=headers)
    assert response.status_code == 415 and "application/json" in _refusal(response)


def test_too_large_is_413_declared_or_chunked(webhook: WebhookApp) -> None:
    big = json.dumps(review_body("x" * 70_000)).encode()
    response = webhook.client.post("/authenticate", data=big, content_type="application/json")
    assert response.status_code == 413 and "65536" in _refusal(response)
    chunked = webhook.client.post(
        "/authenticate",
        input_stream=io.BytesIO(big),
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},  # what a server sets for a chunked body
    )
    assert chunked.status_code == 413
    exact = json.dumps(review_body("y" * (65_536 - len(json.dumps(review_body(""))))))
    assert len(exact) == 65_536
    assert webhook.client.post("/authenticate", data=exact, content_type="application/json").status_code == 200


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"[]", b'{"apiVersion":"v1","kind":"TokenReview"}', b"[" * 50_000, b"\xff\xfe\x00"],
)
def test_malformed_is_400_without_a_traceback(webhook: WebhookApp, raw: bytes) -> None:
    response = webhook.client.post("/authenticate", data=raw, content_type="application/json")
    assert response.status_code == 400
    assert "Traceback" not in response.get_data(as_text=True)
    _refusal(response)


def test_400_answers_in_the_request_version(webhook: WebhookApp) -> None:
    body = {"apiVersion": V1BETA1, "kind": "TokenReview", "spec": {"token": 7}}
    response = webhook.client.post("/authenticate", json=body)
    assert response.status_code == 400 and response.get_json()["apiVersion"] == V1BETA1


def test_audiences_are_intersected(faked: WebhookApp) -> None:
    status = faked.status("sa-token", audiences=["other", "vault"])
    assert status["authenticated"] is True and status["audiences"] == ["vault"]
    assert faked.status("sa-token", audiences=["other"]) == {"authenticated": False}  # no error: a definite no
    assert faked.status("sa-token")["audiences"] == ["api", "vault"]


def test_audience_agnostic_tokens_answer_without_audiences(webhook: WebhookApp) -> None:
    status = webhook.status("static-token-1", audiences=["https://kubernetes.default.svc"])
    assert status["authenticated"] is True and "audiences" not in status


def test_outage_answers_with_an_error_and_is_not_cached(
    faked: WebhookApp, backends: tuple[FakeBackend, FakeBackend]
) -> None:
    ldap, _ = backends
    ldap.down = True
    for _ in range(2):
        assert faked.status("ldap-user-token") == {
            "authenticated": False,
            "error": "authentication backend unavailable: ldap",
        }
    assert ldap.calls == 2  # asked again: errors are never cached
    assert faked.status("sa-token")["authenticated"] is True  # another backend still vouches
    ldap.down = False
    ldap.users["ldap-user-token"] = UserInfo("lee")
    assert faked.status("ldap-user-token")["user"]["username"] == "lee"


def test_decisions_are_cached_for_their_ttl(
    faked: WebhookApp, backends: tuple[FakeBackend, FakeBackend], clock: FixedClock
) -> None:
    ldap, authsvc = backends
    faked.status("sa-token")
    faked.status("sa-token", api_version=V1BETA1, audiences=["vault"])
    assert authsvc.calls == 1
    clock.advance(dt.timedelta(seconds=30))  # authn.cache_ttl
    faked.status("sa-token")
    assert authsvc.calls == 2
    assert ldap.calls == 2  # ldap comes first in the chain: asked for sa-token each time
    faked.status("nobody")
    clock.advance(dt.timedelta(seconds=4))
    faked.status("nobody")
    assert ldap.calls == 3  # the "no" was cached
    clock.advance(dt.timedelta(seconds=1))  # authn.negative_cache_ttl: 5s
    faked.status("nobody")
    assert ldap.calls == 4


def test_readyz_follows_the_backends(faked: WebhookApp, backends: tuple[FakeBackend, FakeBackend]) -> None:
    assert faked.client.get("/readyz").status_code == 200
    backends[0].down = True
    response = faked.client.get("/readyz")
    assert response.status_code == 503 and "ldap" in response.get_data(as_text=True)
    assert faked.client.get("/healthz").status_code == 200


def test_metrics_count_decisions_backends_cache_and_errors(
    faked: WebhookApp, backends: tuple[FakeBackend, FakeBackend]
) -> None:
    faked.status("sa-token")
    faked.status("sa-token")
    faked.status("nobody")
    backends[0].down = True
    faked.status("other")
    faked.client.get("/authenticate")
    text = faked.metrics()
    for line in (
        'authsvc_tokenreview_requests_total{backend="authsvc",decision="allow"} 2.0',
        'authsvc_tokenreview_requests_total{backend="",decision="deny"} 1.0',
        'authsvc_tokenreview_requests_total{backend="ldap",decision="error"} 1.0',
        'authsvc_tokenreview_requests_total{backend="",decision="invalid"} 1.0',
        'authsvc_tokenreview_cache_total{result="hit"} 1.0',
        'authsvc_tokenreview_cache_total{result="miss"} 3.0',
        'authsvc_authn_backend_errors_total{backend="ldap"} 1.0',
        "authsvc_tokenreview_duration_seconds_count 4.0",
    ):
        assert line in text


def test_each_app_has_its_own_registry(tmp_path: Path, clock: FixedClock) -> None:
    first = webhook_app(small_home(tmp_path / "a", clock), AuthenticatorChain([]))
    second = webhook_app(small_home(tmp_path / "b", clock), AuthenticatorChain([]))
    first.status("x")
    assert 'decision="deny"} 1.0' in first.metrics()
    assert 'decision="deny"' not in second.metrics()


def test_audit_has_one_line_per_decision_and_never_the_token(
    faked: WebhookApp, backends: tuple[FakeBackend, FakeBackend], clock: FixedClock
) -> None:
    faked.status("sa-token", audiences=["vault"])
    faked.status("sa-token", audiences=["vault"])
    faked.status("sa-token", audiences=["elsewhere"])
    backends[0].down = True
    faked.status("secret-unknown")
    lines = faked.audit_lines()
    assert len(lines) == 4
    fingerprint = hashlib.sha256(b"sa-token").hexdigest()[:12]
    assert lines[0] == {
        "time": clock().isoformat(timespec="milliseconds"),
        "actor": "kube-apiserver",
        "action": "tokenreview",
        "subject": SA.username,
        "outcome": "allow",
        "reason": "",
        "ids": {"token": fingerprint},
        "groups": list(SA.groups),
        "backend": "authsvc",
        "client": "127.0.0.1",
        "cached": False,
    }
    assert lines[1]["cached"] is True
    assert (lines[2]["outcome"], lines[2]["subject"], lines[2]["ids"]) == ("deny", None, {"token": fingerprint})
    assert lines[3]["outcome"] == "error" and lines[3]["reason"] == "authentication backend unavailable: ldap"
    text = faked.audit_path.read_text()
    assert "sa-token" not in text and "secret-unknown" not in text


def test_a_jwt_identity_is_not_cached_past_its_exp(tmp_path: Path, clock: FixedClock) -> None:
    import jwt

    token = jwt.encode({"iss": "https://x.example", "exp": int(clock().timestamp()) + 10}, "k" * 32)
    backend = FakeBackend("jwt", {token: UserInfo("jane")})
    app = webhook_app(small_home(tmp_path / "h", clock), AuthenticatorChain([backend]))
    app.status(token)
    clock.advance(dt.timedelta(seconds=9))
    app.status(token)
    assert backend.calls == 1
    clock.advance(dt.timedelta(seconds=1))
    app.status(token)
    assert backend.calls == 2  # the cache entry ended with the token's exp, not after 30s


def test_an_unexpected_error_is_a_tokenreview_500_without_details(
    faked: WebhookApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    reviewer = faked.runtime.reviewer
    monkeypatch.setattr(reviewer, "review", lambda *a: 1 / 0)
    response = faked.client.post("/authenticate", json=review_body("sa-token"))
    assert response.status_code == 500
    assert response.get_json()["status"] == {"authenticated": False, "error": "internal error"}
    assert b"ZeroDivision" not in response.data and b"sa-token" not in response.data


def test_v1_is_the_default_version_of_refusals(webhook: WebhookApp) -> None:
    assert webhook.client.get("/authenticate").get_json()["apiVersion"] == V1
