"""Authorization codes are good once (RFC 6749 4.1.2): a second use is refused, and what the
first use handed out is revoked (the refresh token's family, the access token at the webhook
and /userinfo). A code is bound to its client and redirect URI."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.login.fixtures import ADMIN, ADMIN_PASSWORD
from tests.oidc.support import KUBECTL, AuthorizationRequest, code_of, exchange, refresh, sign_in


def _userinfo(client: FlaskClient, access_token: str) -> int:
    return client.get("/userinfo", headers={"Authorization": f"Bearer {access_token}"}).status_code


def test_a_reused_code_is_refused_and_revokes_what_it_gave(oidc: FlaskClient) -> None:
    request = AuthorizationRequest()
    code = code_of(sign_in(oidc, request, ADMIN.username, ADMIN_PASSWORD), request)
    first = exchange(oidc, request, code)
    assert first.status_code == 200
    tokens = first.get_json()
    assert _userinfo(oidc, tokens["access_token"]) == 200  # the twin: valid before the replay

    again = exchange(oidc, request, code)

    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"
    assert "access_token" not in again.get_json()
    assert _userinfo(oidc, tokens["access_token"]) == 401  # revoked
    assert refresh(oidc, tokens["refresh_token"]).status_code == 400  # its family is revoked


def test_a_code_is_bound_to_its_client_and_redirect_uri(oidc: FlaskClient) -> None:
    request = AuthorizationRequest()
    code = code_of(sign_in(oidc, request, ADMIN.username, ADMIN_PASSWORD), request)
    other_port = exchange(oidc, request, code, redirect_uri="http://127.0.0.1:38112/callback")
    assert other_port.status_code == 400 and other_port.get_json()["error"] == "invalid_grant"

    request = AuthorizationRequest()
    code = code_of(sign_in(oidc, request, ADMIN.username, ADMIN_PASSWORD), request)
    other_client = exchange(oidc, request, code, client_id="dashboard")
    assert other_client.status_code in (400, 401) and "access_token" not in other_client.get_json()


def test_an_unknown_or_oversized_code_is_refused(oidc: FlaskClient) -> None:
    request = AuthorizationRequest()
    for code in ("not-a-code", "x" * 10_000, ""):
        answer = exchange(oidc, request, code)
        assert answer.status_code == 400, code[:20]
        assert answer.get_json()["error"] in ("invalid_grant", "invalid_request")
    assert request.client_id == KUBECTL
