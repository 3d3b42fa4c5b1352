"""`tokens.user_issuer`: user tokens under an issuer of their own, service-account tokens under
the service-account issuer, and never one kind under the other's issuer (TokenService.verify and
the webhook's "authsvc" backend alike)."""

from __future__ import annotations

import json
from typing import Any

import jwt
import pytest
from flask.testing import FlaskClient

from authsvc.authn.authsvc_tokens import build
from authsvc.authn.base import ChainContext
from authsvc.errors import ConfigError
from authsvc.home.opened import Home
from authsvc.runtime import build_runtime
from authsvc.settings import settings_from_mapping
from authsvc.web.app import create_app
from pki.errors import TokenRejected
from pki.keys import load_private_key_pem
from pki.tokens.claims import LEGACY_ISSUER, bound_sa_claims, legacy_sa_claims, user_claims

ISSUER = "https://kubernetes.default.svc.cluster.local"
USER_ISSUER = "https://authsvc.example:8444/users"


def with_tokens(home: Home, **changes: Any) -> Home:
    """The same home (keys, inventory) with other `tokens:` settings, validated as authsvc.yaml is."""
    tokens = home.settings.tokens.model_dump(mode="json") | changes
    settings = settings_from_mapping(home.settings.model_dump(mode="json") | {"tokens": tokens})
    return Home.of(home.layout, settings, clock=home.clock, environ=home.secrets.environ)


@pytest.fixture
def user_home(token_home: Home) -> Home:
    return with_tokens(token_home, user_issuer=USER_ISSUER)


def signed_by_home(home: Home, claims: dict[str, Any]) -> str:
    """A token signed with the home's real active key and kid, with claims authsvc would never sign."""
    key = load_private_key_pem(home.layout.key_path("sa").read_bytes())
    kid = home.stores.token_service.key_records()[0].kid
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def review(home: Home, token: str) -> dict[str, Any]:
    """POST /authenticate through the app's real chain (routing by `iss` included)."""
    client: FlaskClient = create_app(build_runtime(home)).test_client()
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
    response = client.post("/authenticate", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 200
    return dict(response.get_json()["status"])


def test_without_a_user_issuer_user_tokens_keep_the_service_account_issuer(token_home: Home) -> None:
    service = token_home.stores.token_service
    issued = service.issue_user_token("alice", ["dev"])
    assert issued.claims["iss"] == ISSUER
    assert service.verify(issued.token).identity().username == "alice"
    assert review(token_home, issued.token)["authenticated"] is True


def test_user_tokens_carry_the_user_issuer_and_sa_tokens_the_sa_issuer(user_home: Home) -> None:
    service = user_home.stores.token_service
    user = service.issue_user_token("alice", ["dev"])
    account = service.issue_service_account_token("ci", "deployer", uid="u-1")
    assert (user.claims["iss"], account.claims["iss"]) == (USER_ISSUER, ISSUER)
    assert service.verify(user.token).identity().username == "alice"
    assert service.verify(account.token).identity().username == "system:serviceaccount:ci:deployer"
    assert review(user_home, user.token)["user"]["username"] == "alice"
    assert review(user_home, account.token)["user"]["username"] == "system:serviceaccount:ci:deployer"
    backend = build(ChainContext.of(user_home))
    assert backend.issuers == frozenset({ISSUER, USER_ISSUER, LEGACY_ISSUER})


def test_a_service_account_token_under_the_user_issuer_is_refused(user_home: Home) -> None:
    now = user_home.clock()
    claims = bound_sa_claims(
        issuer=USER_ISSUER, namespace="ci", name="deployer", uid="u-1", audiences=[ISSUER],
        now=now, ttl=user_home.settings.tokens.sa_ttl, jti="sa-under-user-issuer",
    )  # fmt: skip
    token = signed_by_home(user_home, claims)
    with pytest.raises(TokenRejected, match=f"serviceaccount token must be issued by '{ISSUER}', not '{USER_ISSUER}'"):
        user_home.stores.token_service.verify(token)
    assert build(ChainContext.of(user_home)).authenticate(token) is None
    assert review(user_home, token) == {"authenticated": False}


def test_a_user_token_under_the_service_account_issuer_is_refused(token_home: Home, user_home: Home) -> None:
    # Signed before tokens.user_issuer was set: same key, the service-account issuer.
    before = token_home.stores.token_service.issue_user_token("alice", ["dev"]).token
    with pytest.raises(TokenRejected, match=f"user token must be issued by '{USER_ISSUER}', not '{ISSUER}'"):
        user_home.stores.token_service.verify(before)
    assert build(ChainContext.of(user_home)).authenticate(before) is None
    assert review(user_home, before) == {"authenticated": False}
    # Its twin: where user tokens carry the service-account issuer, it is accepted.
    assert token_home.stores.token_service.verify(before).identity().username == "alice"


def test_each_kind_only_under_its_own_issuer(token_home: Home) -> None:
    """Without a user issuer too: a legacy shape under the bound issuer, or a bound shape under the
    legacy issuer, is not a token authsvc (or kube-apiserver) signs."""
    now, ttl = token_home.clock(), token_home.settings.tokens.sa_ttl
    legacy = legacy_sa_claims(namespace="ci", name="d", uid="u", secret_name="d-token-x", now=now, ttl=ttl, jti="l")
    bound = bound_sa_claims(
        issuer=LEGACY_ISSUER, namespace="ci", name="d", uid="u", audiences=[ISSUER], now=now, ttl=ttl, jti="b"
    )
    user = user_claims(
        issuer=LEGACY_ISSUER, username="alice", groups=[], audience="authsvc", now=now, ttl=ttl, jti="u", source="cli"
    )
    service = token_home.stores.token_service
    for claims in ({**legacy, "iss": ISSUER}, bound, user):
        with pytest.raises(TokenRejected, match="token must be issued by"):
            service.verify(signed_by_home(token_home, claims))
    assert service.verify(signed_by_home(token_home, legacy)).identity().kind == "legacy-serviceaccount"


@pytest.mark.parametrize(
    ("user_issuer", "problem"),
    [
        ("http://authsvc.example/users", "must be an https:// URL"),
        ("https:///users", "must be an https:// URL"),
        ("https://authsvc.example/users?tenant=a", "without query or fragment"),
        ("https://authsvc.example", "needs a path"),
        ("https://authsvc.example/", "needs a path"),
    ],
)
def test_user_issuer_must_be_an_https_url_with_a_path(user_issuer: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=f"tokens.user_issuer: .*{problem}"):
        settings_from_mapping({"tokens": {"user_issuer": user_issuer}})


@pytest.mark.parametrize("user_issuer", ["https://k8s.example/sa", "https://k8s.example/sa/"])
def test_user_issuer_may_not_be_the_service_account_issuer(user_issuer: str) -> None:
    with pytest.raises(ConfigError, match="is the service-account issuer: kube-apiserver refuses"):
        settings_from_mapping({"tokens": {"issuer": "https://k8s.example/sa", "user_issuer": user_issuer}})
    assert settings_from_mapping({"tokens": {}}).tokens.user_issuer is None
