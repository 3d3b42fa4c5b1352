"""No secret of the provider reaches a log, at any level: not the password typed on the form, nor
a code, a PKCE verifier, an access, ID or refresh token (Authlib itself logs whole token
responses at DEBUG; authsvc keeps its logger at INFO). Logs are captured at DEBUG on the root."""

from __future__ import annotations

import logging

import pytest
from flask.testing import FlaskClient

from tests.login.fixtures import ADMIN, ADMIN_PASSWORD
from tests.oidc.support import AuthorizationRequest, code_of, exchange, refresh, sign_in


def test_a_whole_flow_logs_no_secret(oidc: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    request = AuthorizationRequest()
    refused = sign_in(oidc, request, ADMIN.username, "a-wrong-password-7f3a")
    assert refused.status_code == 401
    code = code_of(sign_in(oidc, request, ADMIN.username, ADMIN_PASSWORD), request)
    tokens = exchange(oidc, request, code).get_json()
    renewed = refresh(oidc, tokens["refresh_token"]).get_json()
    refresh(oidc, tokens["refresh_token"])  # reuse: logged as such
    oidc.get("/userinfo", headers={"Authorization": f"Bearer {renewed['access_token']}"})
    logged = caplog.text
    assert "login ok" in logged and "presented after rotation" in logged  # the twin: it does log
    secrets = [ADMIN_PASSWORD, "a-wrong-password-7f3a", code, request.verifier]
    secrets += [tokens["access_token"], tokens["id_token"], tokens["refresh_token"]]
    secrets += [renewed["access_token"], renewed["id_token"], renewed["refresh_token"]]
    for secret in secrets:
        assert secret not in logged
        assert secret.split(".")[-1] not in logged  # not even a JWT's signature
