"""`state` is required of every client: without it a client cannot tell the answer to its own
request from one an attacker started (login CSRF through the redirect). Refused with an error
page, before anything is redirected; the state comes back unchanged otherwise."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.login.fixtures import ADMIN, ADMIN_PASSWORD
from tests.oidc.support import AuthorizationRequest, code_of, redirected_params, sign_in


@pytest.mark.parametrize("state", [None, ""])
def test_a_request_without_state_is_refused(oidc: FlaskClient, state: str | None) -> None:
    params = AuthorizationRequest().params()
    if state is None:
        params.pop("state")
    else:
        params["state"] = state
    answer = oidc.get("/authorize", query_string=params)
    assert answer.status_code == 400 and "Location" not in answer.headers
    assert "state" in answer.get_data(as_text=True) and "<form" not in answer.get_data(as_text=True)


def test_a_request_with_two_states_is_refused(oidc: FlaskClient) -> None:
    request = AuthorizationRequest()
    query = "&".join(f"{k}={v}" for k, v in request.params().items()) + "&state=second"
    answer = oidc.get("/authorize?" + query)
    assert answer.status_code in (302, 400) and "code=" not in answer.headers.get("Location", "")


def test_the_state_comes_back_exactly(oidc: FlaskClient) -> None:
    request = AuthorizationRequest(state="s p&a=c%e;\u00e9")
    answer = sign_in(oidc, request, ADMIN.username, ADMIN_PASSWORD)
    code_of(answer, request)
    assert redirected_params(answer)["state"] == request.state


def test_a_sign_in_post_without_the_csrf_token_is_refused(oidc: FlaskClient) -> None:
    from tests.oidc.support import read_form

    request = AuthorizationRequest()
    page = oidc.get("/authorize", query_string=request.params())
    action, inputs = read_form(page.get_data(as_text=True))
    inputs.update(username=ADMIN.username, password=ADMIN_PASSWORD)
    for forged in ({**inputs, "csrf_token": ""}, {**inputs, "csrf_token": "x" * 43}):
        answer = oidc.post(action, data=forged)
        assert answer.status_code == 400 and "Location" not in answer.headers
    cross_site = oidc.post(action, data=inputs, headers={"Origin": "https://evil.example"})
    assert cross_site.status_code == 400 and "Location" not in cross_site.headers
    oidc.delete_cookie("__Host-authsvc-csrf", domain="localhost")
    no_cookie = oidc.post(action, data=inputs)
    assert no_cookie.status_code == 400 and "Location" not in no_cookie.headers
