"""PKCE (RFC 7636) at the provider: S256 only, required of public clients, checked at /token.

A code intercepted on its way to the loopback listener (another local process on the port, a
browser extension, a log) is worth nothing without the verifier that only the client holds."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.login.fixtures import ADMIN, ADMIN_PASSWORD
from tests.oidc.support import AuthorizationRequest, code_of, exchange, sign_in


def _code(client: FlaskClient) -> tuple[AuthorizationRequest, str]:
    request = AuthorizationRequest()
    return request, code_of(sign_in(client, request, ADMIN.username, ADMIN_PASSWORD), request)


def test_the_right_verifier_gets_the_tokens(oidc: FlaskClient) -> None:
    request, code = _code(oidc)
    answer = exchange(oidc, request, code)
    assert answer.status_code == 200 and "id_token" in answer.get_json()


@pytest.mark.parametrize(
    "verifier",
    [
        "a" * 64,  # well-formed, not the one
        "",  # empty
        None,  # missing
        "x" * 42,  # too short to be a verifier
        "!" * 64,  # outside the alphabet
    ],
)
def test_a_wrong_or_missing_verifier_gets_nothing_and_spends_the_code(oidc: FlaskClient, verifier: str | None) -> None:
    request, code = _code(oidc)
    wrong = exchange(oidc, request, code, code_verifier=verifier)  # type: ignore[arg-type]
    assert wrong.status_code == 400, wrong.get_data(as_text=True)
    assert wrong.get_json()["error"] in ("invalid_grant", "invalid_request")
    assert "access_token" not in wrong.get_json()
    # The code is spent: the right verifier after a wrong one is too late (no guessing loop).
    assert exchange(oidc, request, code).status_code == 400


@pytest.mark.parametrize(
    ("method", "challenge"),
    [
        ("plain", None),  # plain: the challenge is the verifier
        (None, "default"),  # no method: RFC 7636 defaults it to plain
        ("S512", None),
        ("S256", ""),  # S256 without a challenge
    ],
)
def test_a_public_client_must_send_an_s256_challenge(
    oidc: FlaskClient, method: str | None, challenge: str | None
) -> None:
    request = AuthorizationRequest()
    params = request.params()
    params.pop("code_challenge_method")
    if method is not None:
        params["code_challenge_method"] = method
    if challenge == "":
        params.pop("code_challenge")
    elif challenge is None and method == "plain":
        params["code_challenge"] = request.verifier
    answer = oidc.get("/authorize", query_string=params)
    assert answer.status_code in (302, 400)
    if answer.status_code == 302:  # the redirect URI is the client's: the error goes back to it
        assert "error=invalid_request" in answer.headers["Location"] and "code=" not in answer.headers["Location"]
    else:
        assert "<form" not in answer.get_data(as_text=True)


def test_a_public_client_without_pkce_is_refused(oidc: FlaskClient) -> None:
    request = AuthorizationRequest(method=None)
    answer = oidc.get("/authorize", query_string=request.params())
    assert answer.status_code == 302
    assert "error=invalid_request" in answer.headers["Location"] and "code=" not in answer.headers["Location"]
