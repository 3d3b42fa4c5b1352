"""The "authsvc" webhook backend: identities as kube-apiserver reports them, refreshers, fail closed."""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from authsvc.authn import REGISTRY
from authsvc.authn.authsvc_tokens import AuthsvcTokenAuthenticator, build
from authsvc.authn.base import ChainContext
from authsvc.errors import BackendUnavailable
from authsvc.home.opened import Home
from authsvc.identity import UserInfo
from authsvc.runtime import build_runtime
from authsvc.web.app import create_app
from pki.clock import FixedClock
from pki.db import make_engine
from pki.tokens import SigningKeyStore, TokenService

ISSUER = "https://kubernetes.default.svc.cluster.local"


def test_registered_as_authsvc(token_home: Home) -> None:
    assert REGISTRY["authsvc"] == "authsvc.authn.authsvc_tokens:build"
    backend = build(ChainContext.of(token_home))
    assert backend.name == "authsvc" and backend.ready()
    assert backend.issuers == frozenset({ISSUER, "kubernetes/serviceaccount"})


def test_service_account_identity(token_home: Home) -> None:
    backend = build(ChainContext.of(token_home))
    token = token_home.stores.token_service.issue_service_account_token(
        "ci", "deployer", uid="u-1", pod=("runner-0", "p-1")
    )
    user = backend.authenticate(token.token)
    assert user is not None
    assert user.as_tokenreview_user() == {
        "username": "system:serviceaccount:ci:deployer",
        "uid": "u-1",
        "groups": ["system:serviceaccounts", "system:serviceaccounts:ci"],
        "extra": {
            "authentication.kubernetes.io/pod-name": ["runner-0"],
            "authentication.kubernetes.io/pod-uid": ["p-1"],
        },
    }
    assert user.audiences == (ISSUER,) and user.backend == "authsvc"
    assert backend.authenticate(token.token[:-4] + "AAAA") is None  # bad signature: a definite no


def test_service_accounts_can_be_left_to_kube_apiserver(token_home: Home, home_factory: Any) -> None:
    native = home_factory("native", tokens={"webhook_service_accounts": False})
    backend = build(ChainContext.of(native))
    service = native.stores.token_service
    assert backend.authenticate(service.issue_service_account_token("ci", "deployer", uid="u-1").token) is None
    assert backend.authenticate(service.issue_service_account_token("ci", "d", uid="u", legacy=True).token) is None
    user = backend.authenticate(service.issue_user_token("alice").token)
    assert user is not None and user.username == "alice"


def test_legacy_identity(token_home: Home) -> None:
    backend = build(ChainContext.of(token_home))
    token = token_home.stores.token_service.issue_service_account_token("ci", "deployer", uid="u-1", legacy=True)
    user = backend.authenticate(token.token)
    assert user is not None and user.username == "system:serviceaccount:ci:deployer" and user.uid == "u-1"
    assert user.audiences == (ISSUER,)  # no aud: the API server's own audiences, as kube-apiserver takes it


def test_user_token_without_refresher(token_home: Home) -> None:
    backend = build(ChainContext.of(token_home))
    token = token_home.stores.token_service.issue_user_token("alice", ["dev"], uid="1001", extra={"team": ["a"]})
    user = backend.authenticate(token.token)
    # Audience-agnostic to the API server (which sends its own audiences in spec.audiences); the
    # jti rides along for the webhook's revocation check.
    assert user == UserInfo("alice", "1001", ("dev",), {"team": ("a",)}, (), "authsvc", token.jti)


def test_refresher_for_the_source_has_the_last_word(token_home: Home) -> None:
    seen: list[UserInfo] = []

    def refresh(user: UserInfo) -> UserInfo | None:
        seen.append(user)
        return None if user.username == "bob" else dataclasses.replace(user, groups=("dev", "ops"))

    backend = build(ChainContext.of(token_home, {"ldap": refresh}))
    service = token_home.stores.token_service
    alice = backend.authenticate(service.issue_user_token("alice", ["dev"], source="ldap").token)
    assert alice is not None and alice.groups == ("dev", "ops")
    assert backend.authenticate(service.issue_user_token("bob", ["dev"], source="ldap").token) is None
    carol = backend.authenticate(service.issue_user_token("carol", ["dev"], source="cli").token)
    assert carol is not None and carol.groups == ("dev",)  # no refresher for "cli"
    assert [u.username for u in seen] == ["alice", "bob"]
    sa = backend.authenticate(service.issue_service_account_token("ci", "x").token)
    assert sa is not None and len(seen) == 2  # service accounts are not refreshed


def test_refresher_outage_fails_closed(token_home: Home) -> None:
    def down(user: UserInfo) -> UserInfo | None:
        raise BackendUnavailable("directory unreachable")

    context = ChainContext.of(token_home, {"ldap": down})
    token = token_home.stores.token_service.issue_user_token("alice", source="ldap")
    with pytest.raises(BackendUnavailable):
        build(context).authenticate(token.token)


def test_key_store_outage_is_backend_unavailable(token_home: Home, tmp_path: Path, clock: FixedClock) -> None:
    """The inventory cannot be read (here: a directory where the database should be): cannot decide."""
    token = token_home.stores.token_service.issue_user_token("alice")
    (tmp_path / "gone.db").mkdir()
    broken = TokenService(
        SigningKeyStore(make_engine(f"sqlite:///{tmp_path / 'gone.db'}")),
        token_home.stores.signing_key_files,
        token_home.stores.token_service.config,
        clock,
    )
    backend = AuthsvcTokenAuthenticator(broken, {})
    with pytest.raises(BackendUnavailable, match="signing keys unavailable"):
        backend.authenticate(token.token)
    assert not backend.ready()


def test_tokenreview_through_the_webhook(token_home: Home) -> None:
    """The whole path: POST /authenticate with a TokenReview, answered by this backend through the chain."""
    app = create_app(build_runtime(token_home))
    client: FlaskClient = app.test_client()
    token = token_home.stores.token_service.issue_service_account_token("ci", "deployer", uid="u-1").token

    def review(bearer: str) -> dict[str, Any]:
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": bearer}}
        response = client.post("/authenticate", data=json.dumps(body), content_type="application/json")
        assert response.status_code == 200
        return dict(response.get_json()["status"])

    status = review(token)
    assert status["authenticated"] is True and status["user"]["username"] == "system:serviceaccount:ci:deployer"
    revoked = token_home.stores.token_service.issue_service_account_token("ci", "deployer", uid="u-1")
    token_home.stores.token_service.revoke(revoked.jti)
    assert review(revoked.token).get("authenticated") is False


def test_verify_is_thread_safe(token_home: Home) -> None:
    service = token_home.stores.token_service
    tokens = [service.issue_user_token(f"user{i}").token for i in range(8)]
    service.invalidate()
    errors: list[BaseException] = []

    def work(token: str) -> None:
        try:
            for _ in range(20):
                service.verify(token)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
