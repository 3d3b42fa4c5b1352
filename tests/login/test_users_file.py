"""The static users file: format, reload on change, fail-closed parsing, `authsvc users`, `authsvc ldap test`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from argon2 import extract_parameters

from authsvc.errors import BackendUnavailable
from authsvc.home.layout import CONFIG_NAME
from authsvc.login.users_file import (
    StaticUser,
    UsersFile,
    hash_password,
    parse_users,
    read_users,
    render_users,
    write_users,
)
from tests.components.slapd import Slapd
from tests.conftest import run_cli
from tests.ldap.fixtures import ENVIRON, ldap_settings
from tests.login.fixtures import CHEAP_HASHER


def _user(name: str, password: str, groups: tuple[str, ...] = ()) -> StaticUser:
    return StaticUser(name, f"{name}-uid", groups, hash_password(password, CHEAP_HASHER))


def test_render_and_parse_round_trip() -> None:
    users = [_user("alice", "a", ("dev", "ops")), _user("bob", "b")]
    text = render_users(users)
    assert text.startswith("# authsvc users file")
    assert '"dev,ops"' in text and "$argon2id$" in text
    assert parse_users(text) == users


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("secret,alice,uid", "argon2 hash, not a password"),
        ("$argon2id$x,alice", "expected hash,user,uid"),
        ("$argon2id$x,ali/ce,uid", "path separator"),
        ('$argon2id$x,alice,uid,"dev,\x01bad"', "control character"),
        ("$argon2id$x,alice,uid\n$argon2id$y,alice,uid2", "listed twice"),
    ],
)
def test_malformed_files_are_refused_with_the_line(line: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as refused:
        parse_users("# comment\n" + line + "\n")
    assert "line 2" in str(refused.value) or "line 3" in str(refused.value)


def test_verify_and_reload_on_change(tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    users = UsersFile(path)
    assert users.verify("alice", "a") == (False, None)  # no file: nobody
    write_users(path, [_user("alice", "a", ("dev",))])
    assert path.stat().st_mode & 0o777 == 0o600
    known, user = users.verify("alice", "a")
    assert known and user is not None and user.groups == ("dev",)
    assert users.verify("alice", "b") == (True, None)
    assert users.verify("Alice", "a") == (False, None)
    write_users(path, [_user("alice", "new", ("ops",))])  # atomic rename: a new inode
    assert users.verify("alice", "a") == (True, None)
    assert users.lookup("alice").groups == ("ops",)  # type: ignore[union-attr]


def test_a_broken_file_fails_closed_until_fixed(tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    write_users(path, [_user("alice", "a")])
    users = UsersFile(path)
    assert users.lookup("alice") is not None
    path.write_text(path.read_text() + "plaintext-password,mallory,uid\n")
    with pytest.raises(BackendUnavailable, match="unusable"):
        users.lookup("alice")
    write_users(path, [_user("alice", "a")])
    assert users.lookup("alice") is not None


def test_unknown_users_cost_a_verify_with_the_files_parameters(tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    write_users(path, [_user("alice", "a")])
    users = UsersFile(path)
    users.verify("nobody", "x")
    decoy = users._decoy()
    assert extract_parameters(decoy) == extract_parameters(users.lookup("alice").password_hash)  # type: ignore[union-attr]


def test_users_commands(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / CONFIG_NAME).write_text("login:\n  backends: [users]\n")
    add = run_cli(
        ["users", "add", "alice", "-g", "dev", "-g", "ops", "--uid", "u-1", "--password-stdin"],
        home=home,
        input="alice-pw\n",
    )
    assert add.exit_code == 0, add.stderr
    assert run_cli(["users", "add", "alice", "--password-stdin"], home=home, input="x\n").exit_code == 1
    assert run_cli(["users", "add", "bad/name", "--password-stdin"], home=home, input="x\n").exit_code == 2
    assert run_cli(["users", "add", "bob", "--password-stdin"], home=home, input="\n").exit_code == 1  # empty
    listed = run_cli(["users", "list", "-o", "json"], home=home)
    assert json.loads(listed.stdout) == [{"user": "alice", "uid": "u-1", "groups": ["dev", "ops"]}]
    assert "argon2" not in listed.stdout
    path = home / "users.csv"
    assert UsersFile(path).verify("alice", "alice-pw")[1] is not None

    assert run_cli(["users", "passwd", "alice", "--password-stdin"], home=home, input="new-pw\n").exit_code == 0
    assert UsersFile(path).verify("alice", "alice-pw")[1] is None
    assert UsersFile(path).verify("alice", "new-pw")[1] is not None
    assert run_cli(["users", "passwd", "nobody", "--password-stdin"], home=home, input="x\n").exit_code == 1

    assert run_cli(["users", "remove", "alice"], home=home).exit_code == 0
    assert read_users(path) == []
    assert run_cli(["users", "remove", "alice"], home=home).exit_code == 1
    assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.slapd
def test_ldap_test_command(tmp_path: Path, directory_server: Slapd, login_home_template: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(login_home_template, home)
    settings = ldap_settings(directory_server, nested_depth=2, group_prefix="ldap:")
    (home / CONFIG_NAME).write_text(yaml.safe_dump({"ldap": settings.model_dump(mode="json")}))
    shown = run_cli(["ldap", "test", "carol", "-o", "json"], home=home, env=ENVIRON)
    assert shown.exit_code == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert report["dn"] == "uid=carol,ou=people,dc=example,dc=org"
    assert report["groups"] == ["ldap:admins", "ldap:ops", "ldap:platform"]
    assert report["server"] == directory_server.url and report["uid"]
    assert (report["flavor"], report["account"]) == (
        "generic",
        "not checked (ldap.account_checks: none; the user filter alone decides)",
    )
    table = run_cli(["ldap", "test", "alice"], home=home, env=ENVIRON)
    assert "dn:" in table.stdout and "ldap:dev" in table.stdout

    missing = run_cli(["ldap", "test", "*"], home=home, env=ENVIRON)
    assert missing.exit_code == 1 and "no single entry" in missing.stderr
    folded = run_cli(["ldap", "test", "\uff41\uff4c\uff49\uff43\uff45"], home=home, env=ENVIRON)
    assert folded.exit_code == 1 and "only by folding the spelling" in folded.stderr
    no_password = run_cli(["ldap", "test", "alice"], home=home, env={})
    assert no_password.exit_code == 1 and "TEST_LDAP_BIND_PASSWORD" in no_password.stderr
    (home / CONFIG_NAME).write_text("login: {}\n")
    assert run_cli(["ldap", "test", "alice"], home=home).exit_code == 1
