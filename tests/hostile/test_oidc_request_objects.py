"""Request objects (`request`, `request_uri`; RFC 9101 / OIDC Core 6) are refused whatever they
are signed with: an unsigned one (`alg: none`) would let anyone set the redirect URI or the client
of a request, and one MACed with HS256 would need the server to keep client secrets in clear.
authsvc answers `request_not_supported` (Authlib's RFC 9101 extension, switched off), never
follows a `request_uri`, and never uses a parameter from inside a request object."""

from __future__ import annotations

import jwt
import pytest
from flask.testing import FlaskClient

from tests.oidc.support import KUBECTL, WEBAPP, WEBAPP_REDIRECT, WEBAPP_SECRET, AuthorizationRequest


def _claims(request: AuthorizationRequest) -> dict[str, str]:
    # What an attacker would put inside: the client's id, and a redirect URI of their own.
    return {**request.params(), "redirect_uri": "https://evil.example/steal", "iss": request.client_id, "aud": "x"}


def _refused(client: FlaskClient, params: dict[str, str]) -> None:
    answer = client.get("/authorize", query_string=params)
    assert answer.status_code == 400, answer.status_code
    assert "Location" not in answer.headers and "<form" not in answer.get_data(as_text=True)
    assert "not_supported" in answer.get_data(as_text=True)


@pytest.mark.parametrize("client_id", [KUBECTL, WEBAPP])
def test_an_unsigned_request_object_is_refused(oidc: FlaskClient, client_id: str) -> None:
    if client_id == KUBECTL:
        request = AuthorizationRequest()
    else:
        request = AuthorizationRequest(client_id=WEBAPP, redirect_uri=WEBAPP_REDIRECT, method=None)
    unsigned = jwt.encode(_claims(request), None, algorithm="none")
    _refused(oidc, {"client_id": client_id, "response_type": "code", "request": unsigned})
    # Beside the plain parameters too: the object must not win over them, nor be ignored silently.
    _refused(oidc, {**request.params(), "request": unsigned})


def test_a_request_object_macd_with_the_client_secret_is_refused(oidc: FlaskClient) -> None:
    request = AuthorizationRequest(client_id=WEBAPP, redirect_uri=WEBAPP_REDIRECT, method=None)
    macd = jwt.encode(_claims(request), WEBAPP_SECRET, algorithm="HS256")
    _refused(oidc, {"client_id": WEBAPP, "response_type": "code", "request": macd})
    _refused(oidc, {**request.params(), "request": macd})


def test_a_request_uri_is_never_fetched(oidc: FlaskClient) -> None:
    request = AuthorizationRequest()
    _refused(oidc, {**request.params(), "request_uri": "https://evil.example/request.jwt"})


def test_the_same_parameters_without_a_request_object_get_the_form(oidc: FlaskClient) -> None:
    answer = oidc.get("/authorize", query_string=AuthorizationRequest().params())
    assert answer.status_code == 200 and "<form" in answer.get_data(as_text=True)
