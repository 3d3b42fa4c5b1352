"""POST /login through the real app, against a real slapd and a real users file."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import pytest
from flask.testing import FlaskClient

from authsvc.home.opened import Home
from authsvc.web.app import runtime_of
from pki.clock import FixedClock
from tests.components.slapd import Slapd
from tests.components.support import eventually
from tests.ldap.fixtures import HOSTILE_NAMES, SPECIAL_PASSWORD
from tests.login.fixtures import ADMIN, ADMIN_PASSWORD, MakeHome, basic

pytestmark = pytest.mark.slapd
INVALID = {"error": "invalid user name or password"}


def login(client: FlaskClient, username: str, password: str, *, address: str = "10.0.0.1", query: str = "") -> Any:
    return client.post(f"/login{query}", headers=basic(username, password), environ_base={"REMOTE_ADDR": address})


def test_directory_login_returns_a_token_that_verifies(client: FlaskClient, clock: FixedClock) -> None:
    response = login(client, "alice", "alice-pw")
    assert response.status_code == 200, response.json
    body = response.json
    assert (body["user"], body["groups"]) == ("alice", ["dev"])
    expected_expiry = (clock() + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert body["expirationTimestamp"] == expected_expiry
    assert response.headers["Cache-Control"] == "no-store"
    home: Home = runtime_of(client.application).home
    verified = home.stores.token_service.verify(body["token"])
    identity = verified.identity()
    assert (identity.username, identity.groups, identity.source) == ("alice", ("dev",), "ldap")
    assert identity.uid  # the directory's entryUUID


def test_the_typed_spelling_does_not_become_the_identity(client: FlaskClient) -> None:
    response = login(client, " ALICE ", "alice-pw")
    assert response.status_code == 200 and response.json["user"] == "alice"


def test_execcredential_format(client: FlaskClient) -> None:
    response = login(client, "carol", "carol-pw", query="?format=execcredential")
    assert response.status_code == 200
    body = response.json
    assert body["apiVersion"] == "client.authentication.k8s.io/v1" and body["kind"] == "ExecCredential"
    assert set(body["status"]) == {"token", "expirationTimestamp"}
    assert login(client, "carol", "carol-pw", query="?format=yaml").status_code == 400


def test_special_characters_in_passwords_pass_through_basic_auth(client: FlaskClient) -> None:
    assert login(client, "special", SPECIAL_PASSWORD).status_code == 200
    assert login(client, "special", SPECIAL_PASSWORD[:-1]).status_code == 401


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("alice", "wrong"),  # wrong password
        ("alice", ""),  # empty password: never an anonymous bind
        ("", "alice-pw"),  # empty user name
        ("nobody", "alice-pw"),  # unknown user
        ("admin", "alice-pw"),  # a users-file user with a wrong password does not fall through to LDAP
        *[(name, "alice-pw") for name, found in HOSTILE_NAMES if found is None],
    ],
    ids=lambda v: repr(v)[:20],
)
def test_refusals_all_look_the_same(client: FlaskClient, username: str, password: str) -> None:
    response = login(client, username, password, address=f"10.1.{len(username) % 250}.{len(password)}")
    assert response.status_code == 401
    assert response.json == INVALID
    assert response.headers["WWW-Authenticate"] == 'Basic realm="authsvc", charset="UTF-8"'


def test_missing_or_malformed_authorization(client: FlaskClient) -> None:
    for headers in ({}, {"Authorization": "Bearer x"}, {"Authorization": "Basic !!!"}, {"Authorization": "Basic"}):
        response = client.post("/login", headers=headers)
        assert response.status_code == 401 and "WWW-Authenticate" in response.headers
    wrong = client.get("/login", headers=basic("alice", "alice-pw"))
    assert wrong.status_code == 405 and wrong.headers["Allow"] == "POST"
    assert "use POST" in wrong.get_data(as_text=True)


def test_static_users_file_backend(client: FlaskClient) -> None:
    response = login(client, ADMIN.username, ADMIN_PASSWORD)
    assert response.status_code == 200
    assert (response.json["user"], response.json["groups"]) == ("admin", ["platform-admins"])
    home: Home = runtime_of(client.application).home
    identity = home.stores.token_service.verify(response.json["token"]).identity()
    assert (identity.source, identity.uid) == ("users", ADMIN.uid)
    assert login(client, "ADMIN", ADMIN_PASSWORD).status_code == 401  # the users file is exact


def test_a_name_the_signing_policy_refuses_gets_403(client: FlaskClient) -> None:
    # The credentials are right; the policy (user_pattern) does not allow the name in a token.
    response = login(client, "weird,name", "weird-pw")
    assert response.status_code == 403 and "may not log in" in response.json["error"]


def test_rate_limit_per_user(client: FlaskClient, clock: FixedClock) -> None:
    for attempt in range(3):
        assert login(client, "bob", f"guess-{attempt}", address=f"10.2.0.{attempt}").status_code == 401
    blocked = login(client, "bob", "bob-pw", address="10.2.0.99")  # right password, other address
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) == 15 * 60
    assert login(client, "BOB", "bob-pw", address="10.2.0.98").status_code == 429  # same user, other spelling
    assert login(client, "alice", "alice-pw", address="10.2.0.99").status_code == 200  # other users unaffected
    clock.advance(dt.timedelta(minutes=10))
    assert int(login(client, "bob", "bob-pw").headers["Retry-After"]) == 5 * 60
    clock.advance(dt.timedelta(minutes=5, seconds=1))
    assert login(client, "bob", "bob-pw").status_code == 200
    assert login(client, "bob", "wrong").status_code == 401  # the success cleared the count


@pytest.mark.parametrize("spelling", ["\uff41\uff4c\uff49\uff43\uff45", "AL\u0130CE"], ids=["fullwidth", "U+0130"])
def test_spellings_the_directory_folds_do_not_log_in_and_share_the_budget(client: FlaskClient, spelling: str) -> None:
    assert login(client, spelling, "alice-pw", address="10.4.0.1").json == INVALID  # 401, not alice
    for attempt in range(2):
        assert login(client, "alice", f"guess-{attempt}", address=f"10.4.0.{2 + attempt}").status_code == 401
    # alice's budget (3) is spent: the folded spelling counted against it too
    assert login(client, "alice", "alice-pw", address="10.4.0.9").status_code == 429
    assert login(client, spelling, "alice-pw", address="10.4.0.10").status_code == 429


def test_rate_limit_per_client_address(client: FlaskClient) -> None:
    for attempt in range(10):
        assert login(client, f"user-{attempt}", "guess", address="10.3.0.1").status_code == 401
    assert login(client, "alice", "alice-pw", address="10.3.0.1").status_code == 429
    assert login(client, "alice", "alice-pw", address="10.3.0.2").status_code == 200


def test_login_switched_off(make_home: MakeHome, app_for: Any, directory_server: Slapd) -> None:
    client = app_for(make_home(directory_server, backends=())).test_client()
    assert login(client, "alice", "alice-pw").status_code == 404


def test_token_review_carries_the_directory_groups_and_follows_changes(
    make_home: MakeHome, app_for: Any, private_slapd: Slapd, clock: FixedClock
) -> None:
    client = app_for(make_home(private_slapd)).test_client()
    token = login(client, "carol", "carol-pw").json["token"]
    assert _review(client, token)["user"]["groups"] == ["ops"]

    private_slapd.add_member("dev", "uid=carol,ou=people,dc=example,dc=org")
    clock.advance(dt.timedelta(seconds=61))  # ldap.group_cache_ttl (60 s) and the webhook's cache
    assert _review(client, token)["user"]["groups"] == ["dev", "ops"]

    private_slapd.delete("uid=carol,ou=people,dc=example,dc=org")
    clock.advance(dt.timedelta(seconds=61))
    status = _review(client, token)
    assert status["authenticated"] is False


def test_users_file_tokens_follow_the_file(client: FlaskClient, clock: FixedClock) -> None:
    from authsvc.login.users_file import read_users, write_users

    token = login(client, ADMIN.username, ADMIN_PASSWORD).json["token"]
    assert _review(client, token)["user"]["groups"] == ["platform-admins"]
    home: Home = runtime_of(client.application).home
    path = home.layout.path(home.settings.login.users_file)
    write_users(path, [u for u in read_users(path) if u.username != "admin"])
    clock.advance(dt.timedelta(seconds=2))  # the webhook's result cache (1 s here)
    assert _review(client, token)["authenticated"] is False


def _review(client: FlaskClient, token: str) -> dict[str, Any]:
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
    response = client.post("/authenticate", data=json.dumps(review), content_type="application/json")
    assert response.status_code == 200, response.data
    status: dict[str, Any] = json.loads(response.data)["status"]
    return status


def test_directory_outage_fails_closed_and_recovers(
    make_home: MakeHome, app_for: Any, private_slapd: Slapd, clock: FixedClock
) -> None:
    client = app_for(make_home(private_slapd)).test_client()
    token = login(client, "alice", "alice-pw").json["token"]
    assert client.get("/readyz").status_code == 200
    errors_before = _metric(client, 'authsvc_authn_backend_errors_total{backend="ldap"}')

    private_slapd.stop()
    response = login(client, "alice", "alice-pw")
    assert response.status_code == 503 and "try again later" in response.json["error"]
    assert login(client, "alice", "wrong").status_code == 503  # an outage is not a failed login
    ready = client.get("/readyz")
    assert ready.status_code == 503 and "ldap" in ready.get_data(as_text=True)
    clock.advance(dt.timedelta(minutes=7))  # past group_cache_ttl + stale_if_error
    review = _review(client, token)
    assert review["authenticated"] is False and "unavailable" in review["error"]
    assert _metric(client, 'authsvc_authn_backend_errors_total{backend="ldap"}') >= errors_before + 3
    assert _metric(client, 'authsvc_login_attempts_total{result="unavailable"}') == 2

    private_slapd.start()  # the same app, not restarted
    assert client.get("/readyz").status_code == 200
    assert _review(client, token)["authenticated"] is True
    assert login(client, "alice", "alice-pw").status_code == 200
    assert login(client, "alice", "wrong").status_code == 401  # counts again, and only once


def _metric(client: FlaskClient, sample: str) -> float:
    for line in client.get("/metrics").get_data(as_text=True).splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_frozen_directory_costs_a_login_one_budget_then_nothing(
    make_home: MakeHome, app_for: Any, private_slapd: Slapd, clock: FixedClock
) -> None:
    """A hung directory (SIGSTOP): /login answers 503 after ldap.request_budget (1 s here), not
    after the directory's timeouts; the next ones and /readyz at once; after SIGCONT it logs in
    again, same app."""
    client = app_for(make_home(private_slapd, ldap={"request_budget": dt.timedelta(seconds=1)})).test_client()
    assert login(client, "alice", "alice-pw").status_code == 200
    private_slapd.freeze()
    try:
        started = time.monotonic()
        assert login(client, "bob", "bob-pw").status_code == 503
        assert 1.0 <= time.monotonic() - started < 1.5
        started = time.monotonic()
        assert login(client, "carol", "carol-pw").status_code == 503
        assert client.get("/readyz").status_code == 503
        assert time.monotonic() - started < 0.5
    finally:
        private_slapd.thaw()
    clock.advance(dt.timedelta(seconds=1))  # ldap.probe_interval
    assert eventually(lambda: client.get("/readyz").status_code, lambda s: s == 200, timeout=10) == 200
    assert login(client, "bob", "bob-pw").status_code == 200
