"""The provider through the app (Flask's test client): discovery, the code flow, ID tokens that
verify with the published keys, /userinfo, refresh with rotation and a fresh look at the user,
confidential clients, fail-closed answers. Hostile input is in tests/hostile/test_oidc_*.py."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient

from authsvc.login.users_file import StaticUser, hash_password, write_users
from pki.clock import FixedClock
from tests.login.fixtures import ADMIN, ADMIN_PASSWORD, CHEAP_HASHER
from tests.oidc.fixtures import MakeOIDCHome, https_client
from tests.oidc.support import (
    ISSUER,
    KUBECTL,
    PUBLIC_URL,
    WEBAPP,
    WEBAPP_REDIRECT,
    WEBAPP_SECRET,
    AuthorizationRequest,
    code_of,
    exchange,
    full_flow,
    refresh,
    sign_in,
)


def verified_id_token(client: FlaskClient, token: str, audience: str = KUBECTL) -> dict[str, Any]:
    """The ID token verified as a relying party would: discovery's jwks_uri, the key by kid."""
    discovery = client.get("/users/.well-known/openid-configuration").get_json()
    keys = client.get(discovery["jwks_uri"].removeprefix(PUBLIC_URL)).get_json()
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWK(next(k for k in keys["keys"] if k["kid"] == kid))
    claims: dict[str, Any] = jwt.decode(
        token, key, algorithms=discovery["id_token_signing_alg_values_supported"], audience=audience, issuer=ISSUER
    )
    return claims


def test_discovery_names_the_provider_endpoints_from_the_configuration(oidc: FlaskClient) -> None:
    answer = oidc.get("/users/.well-known/openid-configuration", headers={"Host": "evil.example"})
    document = answer.get_json()
    assert document["issuer"] == ISSUER
    assert document["authorization_endpoint"] == f"{PUBLIC_URL}/authorize"
    assert document["token_endpoint"] == f"{PUBLIC_URL}/token"
    assert document["userinfo_endpoint"] == f"{PUBLIC_URL}/userinfo"
    assert document["jwks_uri"] == f"{PUBLIC_URL}/openid/v1/jwks"
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["response_types_supported"] == ["code"]
    assert document["request_parameter_supported"] is False
    # The service-account issuer's document is not the provider's.
    assert "authorization_endpoint" not in oidc.get("/.well-known/openid-configuration").get_json()


def test_without_clients_the_endpoints_are_404(make_oidc: MakeOIDCHome, oidc_app: Callable[..., Flask]) -> None:
    client = https_client(oidc_app(make_oidc(oidc={"clients": []})))
    assert client.get("/authorize", query_string=AuthorizationRequest().params()).status_code == 404
    assert client.post("/token", data={"grant_type": "authorization_code"}).status_code == 404
    assert client.get("/userinfo").status_code == 404


def test_the_code_flow_gives_an_id_token_with_the_user_and_groups(oidc: FlaskClient, clock: FixedClock) -> None:
    document = full_flow(oidc, ADMIN.username, ADMIN_PASSWORD)
    request: AuthorizationRequest = document["_request"]
    claims = verified_id_token(oidc, document["id_token"])
    assert claims["sub"] == ADMIN.username and claims["groups"] == list(ADMIN.groups)
    assert claims["nonce"] == request.nonce and claims["auth_time"] == int(clock().timestamp())
    assert claims["exp"] - claims["iat"] == 15 * 60  # oidc.id_token_ttl
    assert document["token_type"] == "Bearer" and document["expires_in"] == 15 * 60
    assert document["refresh_token"]
    info = oidc.get("/userinfo", headers={"Authorization": f"Bearer {document['access_token']}"})
    assert info.status_code == 200 and info.get_json() == {
        "sub": ADMIN.username,
        "preferred_username": ADMIN.username,
        "groups": list(ADMIN.groups),
    }


def test_a_wrong_password_shows_the_form_again_with_one_message(oidc: FlaskClient) -> None:
    request = AuthorizationRequest()
    answer = sign_in(oidc, request, ADMIN.username, "wrong")
    assert answer.status_code == 401 and "Location" not in answer.headers
    unknown = sign_in(oidc, request, "nobody", "wrong")
    page, other = answer.get_data(as_text=True), unknown.get_data(as_text=True)
    assert "Invalid user name or password." in page and "Invalid user name or password." in other
    assert answer.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert answer.headers["X-Frame-Options"] == "DENY" and answer.headers["Cache-Control"] == "no-store"


def test_userinfo_refuses_a_login_token_and_no_token(oidc: FlaskClient, make_oidc: MakeOIDCHome) -> None:
    from tests.login.fixtures import basic

    login = oidc.post("/login", headers=basic(ADMIN.username, ADMIN_PASSWORD)).get_json()
    assert oidc.get("/userinfo", headers={"Authorization": f"Bearer {login['token']}"}).status_code == 401
    assert oidc.get("/userinfo").status_code == 401


def test_refresh_rotates_and_follows_the_users_file(
    make_oidc: MakeOIDCHome, oidc_app: Callable[..., Flask], clock: FixedClock
) -> None:
    home = make_oidc()
    client = https_client(oidc_app(home))
    first = full_flow(client, ADMIN.username, ADMIN_PASSWORD)
    # The directory (here the users file) changes: the next refresh carries the groups of now.
    users = home.layout.path("users.csv")
    write_users(users, [StaticUser(ADMIN.username, ADMIN.uid, ("sre",), hash_password(ADMIN_PASSWORD, CHEAP_HASHER))])
    second = refresh(client, first["refresh_token"])
    assert second.status_code == 200, second.get_data(as_text=True)
    renewed = second.get_json()
    assert renewed["refresh_token"] != first["refresh_token"]
    claims = verified_id_token(client, renewed["id_token"])
    assert claims["groups"] == ["sre"] and "nonce" not in claims
    # OIDC Core 12.2: the time of the sign-in, not of the refresh.
    assert claims["auth_time"] == verified_id_token(client, first["id_token"])["auth_time"]
    # The user leaves: the refresh is refused and the family ends (the new refresh token too).
    write_users(users, [])
    third = refresh(client, renewed["refresh_token"])
    assert third.status_code == 400 and third.get_json()["error"] in ("invalid_grant", "invalid_request")


def test_a_refresh_token_survives_an_outage_of_the_users_file(
    make_oidc: MakeOIDCHome, oidc_app: Callable[..., Flask]
) -> None:
    home = make_oidc()
    client = https_client(oidc_app(home))
    first = full_flow(client, ADMIN.username, ADMIN_PASSWORD)
    users = home.layout.path("users.csv")
    saved = users.read_bytes()
    users.write_text("not,a,valid\nusers file")  # unparseable: the backend cannot decide
    down = refresh(client, first["refresh_token"])
    assert down.status_code == 503 and down.get_json()["error"] == "temporarily_unavailable"
    users.write_bytes(saved)
    users.touch()
    back = refresh(client, first["refresh_token"])  # not spent by the failed attempt
    assert back.status_code == 200, back.get_data(as_text=True)


def test_a_confidential_client_authenticates_with_its_secret(oidc: FlaskClient) -> None:
    request = AuthorizationRequest(client_id=WEBAPP, redirect_uri=WEBAPP_REDIRECT, method=None)
    code = code_of(sign_in(oidc, request, ADMIN.username, ADMIN_PASSWORD), request)
    without = exchange(oidc, request, code, code_verifier=None)  # type: ignore[arg-type]
    assert without.status_code == 401 and without.get_json()["error"] == "invalid_client"
    code = code_of(sign_in(oidc, request, ADMIN.username, ADMIN_PASSWORD), request)
    wrong = exchange(oidc, request, code, code_verifier=None, client_secret="not-the-secret")  # type: ignore[arg-type]
    assert wrong.status_code in (400, 401) and wrong.get_json()["error"] == "invalid_client"
    code = code_of(sign_in(oidc, request, ADMIN.username, ADMIN_PASSWORD), request)
    right = exchange(oidc, request, code, code_verifier=None, client_secret=WEBAPP_SECRET)  # type: ignore[arg-type]
    assert right.status_code == 200, right.get_data(as_text=True)
    assert verified_id_token(oidc, right.get_json()["id_token"], WEBAPP)["sub"] == ADMIN.username


def test_a_code_expires(oidc: FlaskClient, clock: FixedClock) -> None:
    request = AuthorizationRequest()
    code = code_of(sign_in(oidc, request, ADMIN.username, ADMIN_PASSWORD), request)
    clock.advance(dt.timedelta(seconds=61))  # oidc.code_ttl: 60 s
    late = exchange(oidc, request, code)
    assert late.status_code == 400 and late.get_json()["error"] == "invalid_grant"


def test_an_unreachable_database_fails_closed(make_oidc: MakeOIDCHome, oidc_app: Callable[..., Flask]) -> None:
    home = make_oidc()
    client = https_client(oidc_app(home))
    first = full_flow(client, ADMIN.username, ADMIN_PASSWORD)
    home.stores.engine.dispose()
    (home.root / "authsvc.db").rename(home.root / "moved.db")
    (home.root / "authsvc.db").mkdir()  # the database path is now a folder: SQLite cannot open it
    down = refresh(client, first["refresh_token"])
    assert down.status_code == 503


@pytest.mark.postgres
def test_two_replicas_on_postgresql_share_codes_and_families(
    make_oidc: MakeOIDCHome, oidc_app: Callable[..., Flask], postgres_url: str
) -> None:
    first = https_client(oidc_app(make_oidc(database={"url": postgres_url})))
    second = https_client(oidc_app(make_oidc(database={"url": postgres_url})))
    request = AuthorizationRequest()
    code = code_of(sign_in(first, request, ADMIN.username, ADMIN_PASSWORD), request)
    tokens = exchange(second, request, code)  # redeemed on the other replica
    assert tokens.status_code == 200, tokens.get_data(as_text=True)
    rotated = refresh(first, tokens.get_json()["refresh_token"])  # rotated on the first
    assert rotated.status_code == 200, rotated.get_data(as_text=True)
    assert refresh(second, tokens.get_json()["refresh_token"]).status_code == 400  # reuse, on the other replica
    assert refresh(first, rotated.get_json()["refresh_token"]).status_code == 400  # the family is revoked
    assert exchange(first, request, code).status_code == 400  # the code is spent on both
