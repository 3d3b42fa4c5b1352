"""Redirect URIs match exactly (RFC 6749 3.1.2.3, RFC 9700 2.1): never a prefix, a pattern or a
look-alike. A public client's loopback URI may differ in its port only (RFC 8252 7.3).

An unregistered URI is answered with an error page, never a redirect (a redirect to it would be
an open redirector, and a code sent there would be stolen): no Location header, no form."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.oidc.support import KUBECTL, WEBAPP, WEBAPP_REDIRECT, AuthorizationRequest

REFUSED_FOR_KUBECTL = [
    "http://127.0.0.1:38111/callback/extra",  # prefix
    "http://127.0.0.1:38111/callbackx",
    "http://127.0.0.1:38111/",  # another path
    "http://127.0.0.1:38111/Callback",  # case of the path
    "http://127.0.0.1:38111/callback?next=https://evil.example/",  # a query smuggled in
    "http://127.0.0.1:38111/callback#frag",
    "http://127.0.0.1:38111/callback/../callback",
    "http://127.0.0.1:38111/%63allback",  # percent-encoded look-alike
    "https://127.0.0.1:38111/callback",  # another scheme
    "HTTP://127.0.0.1:38111/callback",
    "http://127.0.0.1:038111/callback",  # leading zero
    "http://127.0.0.1:0/callback",
    "http://127.0.0.1:99999/callback",  # out of range
    "http://127.0.0.1:+8000/callback",
    "http://127.0.0.1:8000@evil.example/callback",  # user information: the host is evil.example
    "http://evil.example@127.0.0.1:8000/callback",
    "http://127.0.0.1.evil.example:8000/callback",
    "http://localhost:8000/callback",  # not the registered loopback address
    "http://[::1]:8000/callback",  # registered for 127.0.0.1 only
    "http://127.1:8000/callback",
    "http://2130706433:8000/callback",
    "https://evil.example/callback",
    "//evil.example/callback",
    "/callback",
    "javascript:alert(1)",
    "http://127.0.0.1:8000\\@evil.example/callback",
    "",
]

REFUSED_FOR_WEBAPP = [
    WEBAPP_REDIRECT + "/",
    WEBAPP_REDIRECT + "x",
    WEBAPP_REDIRECT + "?x=1",
    WEBAPP_REDIRECT + "#x",
    WEBAPP_REDIRECT.replace("https://", "http://"),
    WEBAPP_REDIRECT.replace("dashboard.test", "dashboard.test.evil.example"),
    WEBAPP_REDIRECT.replace("dashboard.test", "dashboard.test@evil.example"),
    WEBAPP_REDIRECT.replace("dashboard.test", "DASHBOARD.test"),
    WEBAPP_REDIRECT.replace("https://dashboard.test", "https://dashboard.test:443"),
    "http://127.0.0.1:8000/oauth/callback",  # loopback any-port is for public clients only
]


def _refused(client: FlaskClient, request: AuthorizationRequest) -> None:
    answer = client.get("/authorize", query_string=request.params())
    assert answer.status_code in (400, 404), (request.redirect_uri, answer.status_code, answer.headers.get("Location"))
    assert "Location" not in answer.headers
    assert "<form" not in answer.get_data(as_text=True)


@pytest.mark.parametrize("redirect_uri", REFUSED_FOR_KUBECTL)
def test_an_unregistered_redirect_uri_is_never_redirected_to(oidc: FlaskClient, redirect_uri: str) -> None:
    _refused(oidc, AuthorizationRequest(client_id=KUBECTL, redirect_uri=redirect_uri))


@pytest.mark.parametrize("redirect_uri", REFUSED_FOR_WEBAPP)
def test_a_confidential_clients_uri_matches_exactly(oidc: FlaskClient, redirect_uri: str) -> None:
    _refused(oidc, AuthorizationRequest(client_id=WEBAPP, redirect_uri=redirect_uri, method=None))


@pytest.mark.parametrize(
    ("client_id", "redirect_uri"),
    [
        (KUBECTL, "http://127.0.0.1:38111/callback"),
        (KUBECTL, "http://127.0.0.1:1/callback"),
        (KUBECTL, "http://127.0.0.1:65535/callback"),
        (WEBAPP, WEBAPP_REDIRECT),
    ],
)
def test_registered_redirect_uris_get_the_form(oidc: FlaskClient, client_id: str, redirect_uri: str) -> None:
    request = AuthorizationRequest(client_id=client_id, redirect_uri=redirect_uri)
    answer = oidc.get("/authorize", query_string=request.params())
    assert answer.status_code == 200 and "<form" in answer.get_data(as_text=True)


def test_a_post_cannot_swap_the_redirect_uri_after_the_form(oidc: FlaskClient) -> None:
    from tests.login.fixtures import ADMIN, ADMIN_PASSWORD
    from tests.oidc.support import read_form

    request = AuthorizationRequest()
    page = oidc.get("/authorize", query_string=request.params())
    action, inputs = read_form(page.get_data(as_text=True))
    inputs.update(username=ADMIN.username, password=ADMIN_PASSWORD, redirect_uri="https://evil.example/callback")
    answer = oidc.post(action, data=inputs)
    assert answer.status_code == 400 and "Location" not in answer.headers


def test_an_unknown_client_is_an_error_page(oidc: FlaskClient) -> None:
    _refused(oidc, AuthorizationRequest(client_id="no-such-client"))
