"""The self-service page's views through Flask's test client (over https: the cookies are
Secure), on a home with the users file (`admin`) as its login backend. Each success has its
refused twin: a wrong password, a missing CSRF token, a mode that is not offered, someone
else's credential, an ended or expired session, a banned person."""

from __future__ import annotations

import base64
import datetime as dt
import html.parser
import re
from collections.abc import Callable
from http.cookies import SimpleCookie
from typing import Any

import pytest
import yaml
from cryptography import x509
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from authsvc.access.bans import Ban
from authsvc.access.revoke import plan_restore, plan_revocation, restore, revoke
from authsvc.errors import ConfigError
from authsvc.home.opened import Home
from authsvc.kubeconfig.issuer import CredentialInventory
from authsvc.settings import settings_from_mapping
from pki.clock import FixedClock
from tests.login.fixtures import ADMIN, ADMIN_PASSWORD, basic
from tests.oidc.fixtures import MakeOIDCHome, https_client
from tests.oidc.support import PUBLIC_URL, signed_in

SESSION_COOKIE, CSRF_COOKIE = "__Host-authsvc-session", "__Host-authsvc-csrf"
INVALID = "Invalid user name or password."


class _Forms(html.parser.HTMLParser):
    """Every form of a page: action -> its named inputs (hidden values, checked radios)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form":
            self.forms.append((values.get("action") or "", {}))
        elif tag == "input" and values.get("name") and self.forms:
            if values.get("type") == "radio" and "checked" not in values:
                return
            self.forms[-1][1][values["name"] or ""] = values.get("value") or ""


def forms(page: TestResponse) -> list[tuple[str, dict[str, str]]]:
    reader = _Forms()
    reader.feed(page.get_data(as_text=True))
    return reader.forms


def form(page: TestResponse, action: str) -> dict[str, str]:
    return next(dict(inputs) for found, inputs in forms(page) if found == action)


@pytest.fixture
def make_page(make_oidc: MakeOIDCHome, oidc_app: Callable[..., Flask]) -> Callable[..., tuple[Home, FlaskClient]]:
    def make(**self_service: Any) -> tuple[Home, FlaskClient]:
        home = make_oidc(self_service={"enabled": True, **self_service})
        return home, https_client(oidc_app(home))

    return make


@pytest.fixture
def page(make_page: Callable[..., tuple[Home, FlaskClient]]) -> tuple[Home, FlaskClient]:
    return make_page(modes=["exec", "token"], banner="Ask #platform for access.")


def sign_in(client: FlaskClient, username: str = ADMIN.username, password: str = ADMIN_PASSWORD) -> TestResponse:
    inputs = form(client.get("/"), "/")
    inputs.update(username=username, password=password)
    return client.post("/", data=inputs)


def set_cookie(response: TestResponse, name: str) -> SimpleCookie:
    for header in response.headers.getlist("Set-Cookie"):
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        if name in cookie:
            return cookie
    raise AssertionError(f"no {name} cookie set: {response.headers}")


def test_sign_in_shows_who_you_are_with_secure_cookies(page: tuple[Home, FlaskClient]) -> None:
    _, client = page
    signed_in = sign_in(client)
    assert signed_in.status_code == 303 and signed_in.headers["Location"] == "/access"
    morsel = set_cookie(signed_in, SESSION_COOKIE)[SESSION_COOKIE]
    assert morsel["secure"] and morsel["httponly"] and morsel["samesite"] == "Strict" and morsel["path"] == "/"
    assert morsel["max-age"] == "900" and not morsel["domain"]  # 15 min; __Host-: no Domain
    access = client.get("/access")
    text = access.get_data(as_text=True)
    assert access.status_code == 200 and f'<dd id="user">{ADMIN.username}</dd>' in text
    assert all(f"<li>{group}</li>" in text for group in ADMIN.groups)
    assert "Ask #platform for access." in text
    assert "kubectl --kubeconfig ~/Downloads/kubernetes-admin.kubeconfig get pods" in text
    # Without JavaScript the copy buttons stay hidden (copy.js shows them).
    assert 'class="copy" data-copy="command-1-kubernetes"' in text and " hidden>Copy</button>" in text
    csp = access.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe" not in csp and "form-action 'self'" in csp
    assert access.headers["X-Frame-Options"] == "DENY" and access.headers["Cache-Control"] == "no-store"
    assert client.get("/").headers["Location"] == "/access"  # signed in: on to the page


def test_without_a_session_the_pages_send_you_to_sign_in(page: tuple[Home, FlaskClient]) -> None:
    _, client = page
    for path in ("/access", "/access/credentials"):
        assert client.get(path).headers["Location"] == "/"
    client.set_cookie(SESSION_COOKIE, "forged-" + "x" * 36, domain="localhost", secure=True)
    assert client.get("/access").status_code == 303


def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(page: tuple[Home, FlaskClient]) -> None:
    _, client = page
    wrong, unknown = sign_in(client, password="wrong"), sign_in(client, username="nobody", password="wrong")
    assert wrong.status_code == unknown.status_code == 401
    assert INVALID in wrong.get_data(as_text=True) and INVALID in unknown.get_data(as_text=True)
    assert "nobody" not in unknown.get_data(as_text=True).replace('value="nobody"', "")
    assert SESSION_COOKIE not in wrong.headers.get("Set-Cookie", "")
    assert client.get("/access").status_code == 303


def test_failed_sign_ins_count_with_the_logins_of_slash_login(page: tuple[Home, FlaskClient]) -> None:
    _, client = page
    for _ in range(3):  # login.max_failures_per_user of the test home
        assert sign_in(client, password="wrong").status_code == 401
    assert client.post("/login", headers=basic(ADMIN.username, ADMIN_PASSWORD)).status_code == 429
    assert sign_in(client).status_code == 429  # and the other way round: the page is limited too


def test_every_form_needs_its_csrf_token(page: tuple[Home, FlaskClient]) -> None:
    home, client = page
    refused = client.post("/", data={"username": ADMIN.username, "password": ADMIN_PASSWORD})
    assert refused.status_code == 400 and SESSION_COOKIE not in refused.headers.get("Set-Cookie", "")
    sign_in(client)
    access = client.get("/access")
    for action in ("/access/kubeconfig", "/logout"):
        inputs = form(access, action)
        del inputs["csrf_token"]
        assert client.post(action, data=inputs).status_code == 400, action
    inputs = form(access, "/access/kubeconfig")
    inputs["csrf_token"] = "x" * 43  # not the cookie's
    assert client.post("/access/kubeconfig", data=inputs).status_code == 400
    assert CredentialInventory(home.stores.engine).credentials() == []  # nothing was issued
    assert client.get("/access").status_code == 200  # and the refused logout ended nothing


def test_logout_ends_the_session_even_for_a_copy_of_the_cookie(page: tuple[Home, FlaskClient]) -> None:
    _, client = page
    secret = set_cookie(sign_in(client), SESSION_COOKIE)[SESSION_COOKIE].value
    copy = https_client(client.application)  # someone who copied the cookie
    copy.set_cookie(SESSION_COOKIE, secret, domain="localhost", secure=True)
    assert copy.get("/access").status_code == 200
    out = client.post("/logout", data=form(client.get("/access"), "/logout"))
    assert out.status_code == 303 and out.headers["Location"] == "/?signed_out=1"
    assert set_cookie(out, SESSION_COOKIE)[SESSION_COOKIE]["max-age"] == "0"
    assert "You signed out." in client.get("/?signed_out=1").get_data(as_text=True)
    assert copy.get("/access").headers["Location"] == "/"


def test_a_session_lasts_session_ttl(page: tuple[Home, FlaskClient], clock: FixedClock) -> None:
    _, client = page
    sign_in(client)
    clock.advance(dt.timedelta(minutes=14))
    assert client.get("/access").status_code == 200
    clock.advance(dt.timedelta(minutes=1))
    assert client.get("/access").headers["Location"] == "/"


def test_a_revoked_person_cannot_sign_in_and_is_signed_out(page: tuple[Home, FlaskClient], clock: FixedClock) -> None:
    home, client = page
    sign_in(client)
    assert client.get("/access").status_code == 200
    home.stores.bans.add(Ban(ADMIN.username, clock(), "cli:test", "left the team"))
    home.stores.denylist.invalidate()
    assert client.get("/access").headers["Location"] == "/"
    refused = sign_in(client)
    assert refused.status_code == 403 and "may not sign in" in refused.get_data(as_text=True)


def test_access_revoke_ends_the_sessions_for_good(page: tuple[Home, FlaskClient]) -> None:
    home, client = page
    sign_in(client)
    revoke(home, plan_revocation(home, ADMIN.username, None), None, actor="cli:test", reason="")
    assert client.get("/access").headers["Location"] == "/"
    restore(home, plan_restore(home, ADMIN.username, None), None, actor="cli:test")
    assert client.get("/access").headers["Location"] == "/"  # the old session stays ended
    assert sign_in(client).status_code == 303  # a new sign-in works again


def test_the_default_download_is_an_exec_kubeconfig(page: tuple[Home, FlaskClient]) -> None:
    home, client = page
    sign_in(client)
    inputs = form(client.get("/access"), "/access/kubeconfig")
    assert inputs["mode"] == "exec"  # preselected: the first mode offered
    download = client.post("/access/kubeconfig", data=inputs)
    assert download.status_code == 200, download.get_data(as_text=True)
    assert download.headers["Content-Disposition"] == 'attachment; filename="kubernetes-admin.kubeconfig"'
    assert download.headers["Cache-Control"] == "no-store"
    config = yaml.safe_load(download.data)
    assert config["current-context"] == "admin@kubernetes"
    plugin = config["users"][0]["user"]["exec"]
    assert plugin["command"] == "authsvc" and f"{PUBLIC_URL}/login" in plugin["args"]
    (record,) = CredentialInventory(home.stores.engine).credentials(username=ADMIN.username)
    assert record.mode.value == "exec" and record.requester == "self-service:admin"


def test_only_the_modes_the_operator_offers(make_page: Callable[..., tuple[Home, FlaskClient]]) -> None:
    home, client = make_page()  # exec only, by default
    sign_in(client)
    access = client.get("/access")
    assert 'value="token"' not in access.get_data(as_text=True)
    inputs = {**form(access, "/access/kubeconfig"), "mode": "token"}
    refused = client.post("/access/kubeconfig", data=inputs)
    assert refused.status_code == 400 and "not offered" in refused.get_data(as_text=True)
    inputs = {**form(access, "/access/kubeconfig"), "cluster": "elsewhere"}
    assert client.post("/access/kubeconfig", data=inputs).status_code == 400
    assert CredentialInventory(home.stores.engine).credentials() == []


def test_a_token_kubeconfig_then_revoking_it_from_the_credentials_page(page: tuple[Home, FlaskClient]) -> None:
    home, client = page
    sign_in(client)
    inputs = {**form(client.get("/access"), "/access/kubeconfig"), "mode": "token"}
    token = yaml.safe_load(client.post("/access/kubeconfig", data=inputs).data)["users"][0]["user"]["token"]
    verified = home.stores.token_service.verify(token)
    # Under the backend that vouched: the webhook re-checks the person there, as for /login's tokens.
    assert verified.claims["groups"] == list(ADMIN.groups) and verified.claims["authsvc.io/source"] == "users"
    listed = client.get("/access/credentials")
    assert verified.jti in listed.get_data(as_text=True)
    revoke = next(inputs for action, inputs in forms(listed) if action == "/access/credentials/revoke")
    assert revoke["id"] == verified.jti and revoke["kind"] == "token"

    # Someone else's token: refused, and it stays valid.
    other = home.stores.token_service.issue_user_token("bob", ("dev",))
    refused = client.post("/access/credentials/revoke", data={**revoke, "id": other.jti})
    assert refused.status_code == 404 and not home.stores.token_service.is_revoked(other.jti)
    without_csrf = {k: v for k, v in revoke.items() if k != "csrf_token"}
    assert client.post("/access/credentials/revoke", data=without_csrf).status_code == 400
    assert not home.stores.token_service.is_revoked(verified.jti)

    done = client.post("/access/credentials/revoke", data=revoke)
    assert done.status_code == 303 and home.stores.token_service.is_revoked(verified.jti)
    assert f"Revoked token {verified.jti}." in client.get(done.headers["Location"]).get_data(as_text=True)
    (record,) = home.stores.token_service.store.tokens(jti=verified.jti)
    assert record.revoked_by == "self-service:admin"


def test_ending_ones_own_oidc_sign_in_from_the_credentials_page(page: tuple[Home, FlaskClient]) -> None:
    """A lost laptop's sign-in: its refresh token refused once ended; someone else's sign-in
    cannot be ended from here (the twin: it keeps rotating)."""
    home, client = page
    mine, my_refresh = signed_in(home, ADMIN.username)
    theirs, their_refresh = signed_in(home, "bob")
    sign_in(client)
    listed = client.get("/access/credentials")
    end = next(inputs for action, inputs in forms(listed) if action == "/access/credentials/revoke"
               and inputs["kind"] == "sign-in")  # fmt: skip
    assert "sign-in at the OIDC provider (kubectl)" in listed.get_data(as_text=True)

    grant = theirs.find_refresh_token(their_refresh, "kubectl")
    assert grant is not None
    bob_family = grant.family_id
    refused = client.post("/access/credentials/revoke", data={**end, "id": bob_family})
    assert refused.status_code == 404 and theirs.find_refresh_token(their_refresh, "kubectl") is not None

    done = client.post("/access/credentials/revoke", data=end)
    assert done.status_code == 303
    assert f"Revoked sign-in {end['id']}." in client.get(done.headers["Location"]).get_data(as_text=True)
    assert mine.rotate_refresh_token(my_refresh, "kubectl") is None
    assert theirs.rotate_refresh_token(their_refresh, "kubectl") is not None
    assert client.post("/access/credentials/revoke", data=end).status_code == 404  # ended already


def test_the_page_is_off_unless_enabled(make_oidc: MakeOIDCHome, oidc_app: Callable[..., Flask]) -> None:
    client = https_client(oidc_app(make_oidc()))
    assert client.get("/").status_code == 404
    assert client.post("/", data={}).status_code == 404
    assert client.get("/access").status_code == 404


def test_several_clusters_each_with_its_server_and_ca(make_page: Callable[..., tuple[Home, FlaskClient]]) -> None:
    clusters = [
        {"name": "prod", "server": "https://prod.example:6443", "description": "production"},
        # Any CA of the home stands in for another cluster's.
        {"name": "staging", "server": "https://staging.example:6443", "ca_file": "pki/front-proxy-ca.crt"},
    ]
    home, client = make_page(clusters=clusters)
    sign_in(client)
    access = client.get("/access")
    text = access.get_data(as_text=True)
    assert '<option value="staging">staging</option>' in text and "production" in text
    assert "kubectl --context admin@staging auth can-i --list" in text
    inputs = {**form(access, "/access/kubeconfig"), "cluster": "staging"}
    download = client.post("/access/kubeconfig", data=inputs)
    assert download.headers["Content-Disposition"] == 'attachment; filename="staging-admin.kubeconfig"'
    cluster = yaml.safe_load(download.data)["clusters"][0]
    assert cluster["name"] == "staging" and cluster["cluster"]["server"] == "https://staging.example:6443"
    trusted = x509.load_pem_x509_certificate(base64.b64decode(cluster["cluster"]["certificate-authority-data"]))
    assert trusted == x509.load_pem_x509_certificate(home.layout.cert_path("front-proxy-ca").read_bytes())
    prod = yaml.safe_load(client.post("/access/kubeconfig", data={**inputs, "cluster": "prod"}).data)["clusters"][0]
    assert base64.b64decode(prod["cluster"]["certificate-authority-data"]) == home.layout.cert_path("ca").read_bytes()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"self_service": {"enabled": True}, "login": {"backends": ["users"]}}, "needs server.public_url"),
        ({"self_service": {"enabled": True}, "server": {"public_url": PUBLIC_URL}}, "needs login.backends"),
        ({"self_service": {"modes": []}}, "at least one mode"),
        ({"self_service": {"modes": ["cert"]}}, "self_service.modes.0"),
        ({"self_service": {"modes": ["exec", "exec"]}}, "each mode may be listed once"),
        ({"self_service": {"clusters": [{"name": "a b", "server": "https://x"}]}}, "cluster name 'a b'"),
        ({"self_service": {"clusters": [{"name": "a", "server": "http://x"}]}}, "must be an https:// URL"),
        ({"self_service": {"session_ttl": "13h"}}, "self_service.session_ttl"),
    ],
)
def test_settings_refuse_what_cannot_work(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        settings_from_mapping(values)
