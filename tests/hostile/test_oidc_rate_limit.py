"""The browser sign-in (/authorize) and /login share one failed-login budget per user and per
client address (the same LoginService, the same rows in the database): a guesser cannot double
their attempts by switching endpoints, and at the limit even the right password gets nothing."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.login.fixtures import ADMIN, ADMIN_PASSWORD, basic
from tests.oidc.support import AuthorizationRequest, code_of, sign_in

LIMIT = 3  # login.max_failures_per_user in tests/oidc/support.py


def test_failures_at_authorize_count_at_login(oidc: FlaskClient) -> None:
    request = AuthorizationRequest()
    for _ in range(LIMIT):
        assert sign_in(oidc, request, ADMIN.username, "wrong").status_code == 401
    refused = oidc.post("/login", headers=basic(ADMIN.username, ADMIN_PASSWORD))
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    at_the_form = sign_in(oidc, request, ADMIN.username, ADMIN_PASSWORD)
    assert at_the_form.status_code == 429 and "Location" not in at_the_form.headers
    assert "Too many failed sign-ins" in at_the_form.get_data(as_text=True)


def test_failures_at_login_count_at_authorize(oidc: FlaskClient) -> None:
    for _ in range(LIMIT):
        assert oidc.post("/login", headers=basic(ADMIN.username, "wrong")).status_code == 401
    request = AuthorizationRequest()
    answer = sign_in(oidc, request, ADMIN.username, ADMIN_PASSWORD)
    assert answer.status_code == 429 and "Location" not in answer.headers


def test_below_the_limit_the_right_password_signs_in(oidc: FlaskClient) -> None:
    request = AuthorizationRequest()
    for _ in range(LIMIT - 1):
        assert sign_in(oidc, request, ADMIN.username, "wrong").status_code == 401
    assert oidc.post("/login", headers=basic(ADMIN.username, ADMIN_PASSWORD)).status_code == 200
    code_of(sign_in(oidc, request, ADMIN.username, ADMIN_PASSWORD), request)
