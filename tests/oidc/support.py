"""The code flow against an app in this process (Flask's test client), driven the way a relying
party drives it: Authlib's client builds the authorization URL (state, nonce, PKCE S256) and
parses the redirect; the test plays the browser (GET the form, POST the credentials)."""

from __future__ import annotations

import datetime as dt
import html.parser
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from authsvc.home.layout import HomeLayout
from authsvc.home.opened import Home
from authsvc.oidc.models import SignedInUser
from authsvc.oidc.store import CodeRequest, OIDCStore
from authsvc.settings import Settings
from pki.clock import FixedClock
from tests.ldap.fixtures import ENVIRON

PUBLIC_URL = "https://authsvc.test:8444"
ISSUER = f"{PUBLIC_URL}/users"
KUBECTL = "kubectl"  # a public native client with a loopback redirect (any port)
LOOPBACK_REDIRECT = "http://127.0.0.1/callback"
WEBAPP = "dashboard"  # a confidential client with an exact https redirect
WEBAPP_REDIRECT = "https://dashboard.test/oauth/callback"
WEBAPP_SECRET = "dashboard-secret-0123456789abcdef0123456789"
CSRF_COOKIE = "__Host-authsvc-csrf"


def oidc_settings(**oidc: Any) -> dict[str, Any]:
    import hashlib

    clients = [
        {"id": KUBECTL, "type": "public", "redirect_uris": [LOOPBACK_REDIRECT]},
        {
            "id": WEBAPP,
            "type": "confidential",
            "redirect_uris": [WEBAPP_REDIRECT],
            "secret_sha256": hashlib.sha256(WEBAPP_SECRET.encode()).hexdigest(),
        },
    ]
    return {"clients": clients, **oidc}


def make_oidc_home(template: Path, root: Path, clock: FixedClock, **overrides: Any) -> Home:
    """A copy of the login template home (users file with `admin`) serving the provider."""
    values: dict[str, Any] = {
        "server": {"public_url": PUBLIC_URL},
        "tokens": {"user_issuer": ISSUER},
        "login": {"backends": ["users"], "max_failures_per_user": 3, "max_failures_per_address": 10},
        "oidc": oidc_settings(),
        "authn": {"cache_ttl": 1, "negative_cache_ttl": 1},
    }
    for section, changes in overrides.items():
        values[section] = {**values.get(section, {}), **changes}
    shutil.copytree(template, root)
    return Home.of(HomeLayout.at(root), Settings.model_validate(values), clock=clock, environ=ENVIRON)


class _FormReader(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.inputs: dict[str, str] = {}
        self.action = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form":
            self.action = values.get("action") or ""
        if tag == "input" and values.get("name"):
            self.inputs[values["name"] or ""] = values.get("value") or ""


def read_form(page: str) -> tuple[str, dict[str, str]]:
    reader = _FormReader()
    reader.feed(page)
    return reader.action, reader.inputs


@dataclass
class AuthorizationRequest:
    client_id: str = KUBECTL
    redirect_uri: str = "http://127.0.0.1:38111/callback"
    scope: str = "openid profile groups"
    state: str = field(default_factory=lambda: generate_token(24))
    nonce: str = field(default_factory=lambda: generate_token(24))
    verifier: str = field(default_factory=lambda: generate_token(64))
    method: str | None = "S256"
    extra: dict[str, str] = field(default_factory=dict)

    def params(self) -> dict[str, str]:
        values = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": self.scope,
            "state": self.state,
            "nonce": self.nonce,
        }
        if self.method is not None:
            values["code_challenge"] = create_s256_code_challenge(self.verifier)
            values["code_challenge_method"] = self.method
        values.update(self.extra)
        return {k: v for k, v in values.items() if v is not None}


def sign_in(client: FlaskClient, request: AuthorizationRequest, username: str, password: str) -> TestResponse:
    """GET /authorize (the form), POST it with the credentials; the POST's response."""
    form_page = client.get("/authorize", query_string=request.params())
    assert form_page.status_code == 200, form_page.get_data(as_text=True)
    action, inputs = read_form(form_page.get_data(as_text=True))
    inputs.update(username=username, password=password)
    return client.post(action, data=inputs)


def redirected_params(response: TestResponse) -> dict[str, str]:
    location = response.headers["Location"]
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def code_of(response: TestResponse, request: AuthorizationRequest) -> str:
    assert response.status_code == 302, response.get_data(as_text=True)
    params = redirected_params(response)
    assert params["state"] == request.state
    assert response.headers["Location"].startswith(request.redirect_uri + "?")
    return params["code"]


def exchange(client: FlaskClient, request: AuthorizationRequest, code: str, **overrides: str) -> TestResponse:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": request.redirect_uri,
        "client_id": request.client_id,
        "code_verifier": request.verifier,
    }
    data.update(overrides)
    return client.post("/token", data={k: v for k, v in data.items() if v is not None})


def refresh(client: FlaskClient, refresh_token: str, client_id: str = KUBECTL) -> TestResponse:
    return client.post(
        "/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}
    )


def full_flow(client: FlaskClient, username: str, password: str, **request: Any) -> dict[str, Any]:
    auth = AuthorizationRequest(**request)
    answer = exchange(client, auth, code_of(sign_in(client, auth, username, password), auth))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    document: dict[str, Any] = answer.get_json()
    document["_request"] = auth
    return document


def minutes(n: int) -> dt.timedelta:
    return dt.timedelta(minutes=n)


def signed_in(home: Home, user: str) -> tuple[OIDCStore, str]:
    """`user` signed in at the OIDC provider (a code redeemed, tokens issued), straight through
    the store: the store and the refresh token, as /authorize and /token leave them."""
    store = OIDCStore(
        home.stores.engine, home.clock, code_ttl=dt.timedelta(minutes=1), refresh_ttl=dt.timedelta(hours=8)
    )
    store.save_code(f"code-{user}", CodeRequest(KUBECTL, "http://127.0.0.1:1/cb", "openid"),
                    SignedInUser(user, "", ("dev",), "users", home.clock()))  # fmt: skip
    code = store.redeem_code(f"code-{user}", KUBECTL)
    assert code is not None
    store.record_issue(code, f"access-{user}", home.clock() + dt.timedelta(minutes=15), f"refresh-{user}")
    return store, f"refresh-{user}"
