"""Hostile user names at POST /login and `authsvc ldap test`, against a real slapd.

Every name is sent with alice's correct password (or the rootdn's, for the rootdn typed as a
name): none may log in as anyone. Each refusal is the same 401 as a wrong password, nothing
leaks into the reply or the logs, the failure is counted by the rate limiter (user name and
client address), and nothing else in the home changes.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import sqlalchemy as sa
import yaml
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from authsvc.db.tables import LOGIN_FAILURES
from authsvc.home.opened import Home
from authsvc.login.ratelimit import limit_key
from tests.components.slapd import ADMIN_DN, ADMIN_PASSWORD, ALICE, Slapd
from tests.conftest import run_cli
from tests.hostile.support import assert_clean, captured_logs, home_state, one_error_line
from tests.ldap.fixtures import ENVIRON
from tests.login.fixtures import MakeHome, basic

pytestmark = pytest.mark.slapd
AppFor = Callable[[Home], Flask]
INVALID = {"error": "invalid user name or password"}
# (row id, typed user name); each is sent with alice's password.
HOSTILE_NAMES: list[tuple[str, str]] = [
    ("star", "*"),
    ("prefix wildcard", "al*"),
    ("filter break-out", "*)(uid=*"),
    ("filter break-out after a name", "alice)(uid=*"),
    ("OR injection", "alice)(|(uid=*)"),
    ("open parenthesis", "("),
    ("close parenthesis", ")"),
    ("backslash", "\\"),
    ("escaped star", "\\2a"),
    ("DN injection", "alice,ou=people"),
    ("DN below the base", "alice,ou=people,dc=example,dc=org"),
    ("a user's DN", ALICE.dn),
    ("NUL after the name", "alice\x00"),
    ("NUL inside", "ali\x00ce"),
    ("only NUL", "\x00"),
    ("10,000 characters", "a" * 10_000),
    ("10,000 stars after the name", "alice" + "*" * 10_000),
    ("Cyrillic a", "\u0430lice"),
    ("dotless i", "al\u0131ce"),
    ("zero-width space", "alice\u200b"),
    ("soft hyphen", "al\u00adice"),
    ("combining accent", "alice\u0301"),
    ("fullwidth letters", "\uff41\uff4c\uff49\uff43\uff45"),
    ("capital I with dot", "AL\u0130CE"),
]
# slapd's caseIgnoreMatch takes these for "alice" (compatibility folding): they must still not log in,
# and a failure counts against alice's own budget as well, whatever the spelling.
FOLDED_BY_THE_DIRECTORY = {"fullwidth letters", "capital I with dot"}
FOLDED_NAMES = {name for row, name in HOSTILE_NAMES if row in FOLDED_BY_THE_DIRECTORY}


def _login(client: FlaskClient, username: str, password: str, address: str) -> TestResponse:
    return client.post("/login", headers=basic(username, password), environ_base={"REMOTE_ADDR": address})


def _failures(home: Home, kind: str, value: str) -> int:
    table = LOGIN_FAILURES.c
    with home.stores.engine.connect() as conn:
        count = conn.execute(sa.select(table.failures).where(table.key == limit_key(kind, value))).scalar()
    return int(count or 0)


def _params(rows: list[tuple[str, str]]) -> list[object]:
    return [pytest.param(name, id=row) for row, name in rows]


@pytest.fixture
def home(make_home: MakeHome, directory_server: Slapd) -> Home:
    return make_home(directory_server)


def test_the_twin_logs_in(home: Home, app_for: AppFor) -> None:
    client = app_for(home).test_client()
    response = _login(client, ALICE.uid, ALICE.password, "10.20.0.1")
    assert response.status_code == 200 and response.json is not None and response.json["user"] == "alice"


@pytest.mark.parametrize("username", _params(HOSTILE_NAMES))
def test_hostile_name_logs_in_as_no_one(home: Home, app_for: AppFor, username: str) -> None:
    client = app_for(home).test_client()
    address = "10.20.1.1"
    before = home_state(home.root)
    with captured_logs() as logs:
        response = _login(client, username, ALICE.password, address)
    assert (response.status_code, response.json) == (401, INVALID)
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert_clean({"response": response.get_data(as_text=True), "log": logs.getvalue()}, {ALICE.password})
    # Counted against the typed name, the address, and the account a folded spelling reached.
    assert (_failures(home, "user", username), _failures(home, "addr", address)) == (1, 1)
    if username in FOLDED_NAMES:
        assert _failures(home, "user", ALICE.uid) == 1
    assert before.changes(home_state(home.root), tables={"login_failures"}) == []


def test_the_rootdn_typed_as_a_name_is_not_bound_as(home: Home, app_for: AppFor) -> None:
    client = app_for(home).test_client()
    before = home_state(home.root)
    response = _login(client, ADMIN_DN, ADMIN_PASSWORD, "10.20.2.1")
    assert (response.status_code, response.json) == (401, INVALID)
    assert before.changes(home_state(home.root), tables={"login_failures"}) == []


def test_hostile_names_spend_the_address_budget(home: Home, app_for: AppFor) -> None:
    """login.max_failures_per_address is 10 here: ten hostile names, then even alice is held off."""
    client = app_for(home).test_client()
    for _, username in HOSTILE_NAMES[:10]:
        assert _login(client, username, ALICE.password, "10.20.3.1").status_code == 401
    assert _login(client, ALICE.uid, ALICE.password, "10.20.3.1").status_code == 429
    assert _login(client, ALICE.uid, ALICE.password, "10.20.3.2").status_code == 200


SPELLINGS = [
    ("upper case", "ALICE"),
    ("spaces around", " alice "),
    *[r for r in HOSTILE_NAMES if r[0] in FOLDED_BY_THE_DIRECTORY],
]


@pytest.mark.parametrize("spelling", _params(SPELLINGS))
def test_every_spelling_of_a_user_shares_her_failure_budget(home: Home, app_for: AppFor, spelling: str) -> None:
    """login.max_failures_per_user is 3 here; a spelling the directory takes for alice must not reset it."""
    client = app_for(home).test_client()
    for attempt in range(3):
        assert _login(client, ALICE.uid, f"guess-{attempt}", f"10.20.4.{attempt}").status_code == 401
    assert _login(client, spelling, ALICE.password, "10.20.4.99").status_code == 429


def _configured_home(home: Home) -> Home:
    """The home's settings (ldap section included) written to its authsvc.yaml, for the CLI."""
    home.layout.config_path.write_text(yaml.safe_dump(home.settings.model_dump(mode="json", exclude_defaults=True)))
    return home


LDAP_TEST_NAMES = [(row, name) for row, name in HOSTILE_NAMES if row not in FOLDED_BY_THE_DIRECTORY]


@pytest.mark.parametrize("username", [pytest.param(name, id=row) for row, name in LDAP_TEST_NAMES])
def test_ldap_test_finds_no_one(home: Home, username: str) -> None:
    root = _configured_home(home).root
    before = home_state(root)
    result = run_cli(["ldap", "test", username], home=root, env=ENVIRON)
    assert result.exit_code == 1 and result.stdout == ""
    assert "no single entry" in one_error_line(result.stderr)
    assert before.changes(home_state(root)) == []


def test_ldap_test_twin_finds_alice(home: Home) -> None:
    result = run_cli(["ldap", "test", ALICE.uid, "-o", "json"], home=_configured_home(home).root, env=ENVIRON)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["dn"] == ALICE.dn
