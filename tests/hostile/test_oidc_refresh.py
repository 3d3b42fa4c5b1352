"""Refresh tokens rotate at every use; one presented again after rotation means two parties hold
the family (a stolen copy), so the whole family is revoked (RFC 9700 4.14.2): the thief's copy,
the rightful client's current token, and the access tokens issued in it."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.login.fixtures import ADMIN, ADMIN_PASSWORD
from tests.oidc.support import WEBAPP, full_flow, refresh


def _userinfo(client: FlaskClient, access_token: str) -> int:
    return client.get("/userinfo", headers={"Authorization": f"Bearer {access_token}"}).status_code


def test_a_refresh_token_reused_after_rotation_revokes_the_family(oidc: FlaskClient) -> None:
    first = full_flow(oidc, ADMIN.username, ADMIN_PASSWORD)
    rotated = refresh(oidc, first["refresh_token"])
    assert rotated.status_code == 200  # the twin: a first use rotates
    current = rotated.get_json()
    assert _userinfo(oidc, current["access_token"]) == 200

    replay = refresh(oidc, first["refresh_token"])

    assert replay.status_code == 400 and replay.get_json()["error"] == "invalid_grant"
    assert "access_token" not in replay.get_json()
    assert refresh(oidc, current["refresh_token"]).status_code == 400  # the rightful holder's too
    assert _userinfo(oidc, current["access_token"]) == 401
    assert _userinfo(oidc, first["access_token"]) == 401


def test_another_sign_in_keeps_its_own_family(oidc: FlaskClient) -> None:
    stolen = full_flow(oidc, ADMIN.username, ADMIN_PASSWORD)
    other = full_flow(oidc, ADMIN.username, ADMIN_PASSWORD)
    refresh(oidc, stolen["refresh_token"])
    refresh(oidc, stolen["refresh_token"])  # reuse: that family ends
    assert refresh(oidc, other["refresh_token"]).status_code == 200


def test_a_refresh_token_is_bound_to_its_client(oidc: FlaskClient) -> None:
    tokens = full_flow(oidc, ADMIN.username, ADMIN_PASSWORD)
    elsewhere = refresh(oidc, tokens["refresh_token"], client_id=WEBAPP)
    assert elsewhere.status_code in (400, 401) and "access_token" not in elsewhere.get_json()
    assert refresh(oidc, tokens["refresh_token"]).status_code == 200  # not spent by the other client


def test_unknown_and_oversized_refresh_tokens_are_refused(oidc: FlaskClient) -> None:
    for token in ("not-a-token", "x" * 100_000):
        answer = refresh(oidc, token)
        assert answer.status_code in (400, 413), token[:20]
