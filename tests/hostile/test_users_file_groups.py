"""Group names in the static users file (`authsvc users`): a group is one name, never a list.

The file keeps a user's groups in one CSV field joined by commas (`hash,user,uid,"dev,ops"`),
so a comma inside a group name comes back from the file as two groups:
`users add u -g 'dev,system:masters'` would give u `system:masters`. Such a group is refused
before anything is written (one line, exit 1, the file and its lock untouched), and so are the
user names and groups that /login would refuse (the signing policy). A file that already
holds such a line (by hand, or from an older authsvc) is read as the format says, and its
privileged group is never minted: /login answers 403, `users list` and `users passwd` warn.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from werkzeug.test import TestResponse

from authsvc.home.opened import Home, open_home
from authsvc.login.users_file import StaticUser, hash_password, read_users, render_users
from authsvc.runtime import build_runtime
from authsvc.web.app import create_app
from tests.conftest import CliResult, run_cli
from tests.hostile.support import home_state, one_error_line
from tests.login.fixtures import CHEAP_HASHER, basic

PASSWORD = "u-password"
# (row id, the --group values); each must be refused as a whole.
SEPARATED: list[tuple[str, list[str]]] = [
    ("two groups in one", ["dev,ops"]),
    ("a privileged group behind an ordinary one", ["dev,system:masters"]),
    ("kubeadm's admin group behind an ordinary one", ["dev,kubeadm:cluster-admins"]),
    ("space after the comma", ["dev, ops"]),
    ("trailing comma", ["dev,"]),
    ("leading comma", [",dev"]),
    ("only a comma", [","]),
    ("among good groups", ["ok", "dev,system:masters", "fine"]),
]
# (row id, user name, --group values, part of the error): what /login would refuse.
REFUSED_BY_THE_POLICY: list[tuple[str, str, list[str], str]] = [
    ("system:masters", "u", ["system:masters"], "group 'system:masters' is privileged"),
    ("kubeadm:cluster-admins", "u", ["dev", "kubeadm:cluster-admins"], "group 'kubeadm:cluster-admins' is privileged"),
    ("a system: user", "system:kube-scheduler", [], "user name 'system:kube-scheduler' is privileged"),
    ("a node", "system:node:w1", ["system:nodes"], "privileged"),
    ("a user name outside the pattern", "a,b", [], "does not match the policy's pattern"),
]


def _add(home: Home, username: str, groups: list[str]) -> CliResult:
    argv = ["users", "add", username, "--password-stdin"]
    for group in groups:
        argv += ["-g", group]
    return run_cli(argv, home=home.root, input=f"{PASSWORD}\n")


def _users_file(home: Home) -> Path:
    return home.layout.path(home.settings.login.users_file)


def _groups_of(home: Home, username: str) -> list[tuple[str, ...]]:
    return [u.groups for u in read_users(_users_file(home)) if u.username == username]


def _login(home: Home, username: str) -> TestResponse:
    return create_app(build_runtime(home)).test_client().post("/login", headers=basic(username, PASSWORD))


def _warnings(stderr: str) -> list[str]:
    assert "Traceback" not in stderr
    return [line for line in stderr.splitlines() if line.startswith("warning:")]


@pytest.fixture
def users_home(home: Home) -> Home:
    """The home with /login on its users file (no directory) and one user already in the file."""
    config = yaml.safe_load(home.layout.config_path.read_text())
    config["login"]["backends"] = ["users"]
    home.layout.config_path.write_text(yaml.safe_dump(config))
    home = open_home(home.root, clock=home.clock, environ={})
    assert _add(home, "first", ["dev"]).exit_code == 0
    return home


def test_the_twin_two_groups_given_apart_log_in_as_two_groups(users_home: Home) -> None:
    result = _add(users_home, "u", ["dev", "ops"])
    assert result.exit_code == 0, result.stderr
    assert _groups_of(users_home, "u") == [("dev", "ops")]
    response = _login(users_home, "u")
    assert response.status_code == 200 and response.json is not None
    assert response.json["groups"] == ["dev", "ops"]


@pytest.mark.parametrize("groups", [pytest.param(groups, id=row) for row, groups in SEPARATED])
def test_a_separator_in_a_group_is_refused_and_the_file_is_unchanged(users_home: Home, groups: list[str]) -> None:
    before = home_state(users_home.root)
    result = _add(users_home, "u", groups)
    assert (result.exit_code, result.stdout) == (1, ""), result
    line = one_error_line(result.stderr)
    assert "contains ','" in line and "separates groups" in line
    assert before.changes(home_state(users_home.root)) == []


@pytest.mark.parametrize(
    ("username", "groups", "says"), [pytest.param(*rest, id=row) for row, *rest in REFUSED_BY_THE_POLICY]
)
def test_what_login_would_refuse_is_refused_at_users_add(
    users_home: Home, username: str, groups: list[str], says: str
) -> None:
    before = home_state(users_home.root)
    result = _add(users_home, username, groups)
    assert (result.exit_code, result.stdout) == (1, ""), result
    assert says in one_error_line(result.stderr)
    assert before.changes(home_state(users_home.root)) == []


def test_no_writer_puts_a_separator_into_the_file() -> None:
    user = StaticUser("u", "uid", ("dev,system:masters",), hash_password(PASSWORD, CHEAP_HASHER))
    with pytest.raises(ValueError, match="contains ','"):
        render_users([user])


def test_an_older_files_privileged_group_is_named_and_never_minted(users_home: Home) -> None:
    """A line an older `users add -g 'dev,system:masters'` wrote: read as the two groups it lists."""
    legacy = StaticUser("legacy", "legacy-uid", (), hash_password(PASSWORD, CHEAP_HASHER))
    with _users_file(users_home).open("a") as f:
        f.write(render_users([legacy]).splitlines()[-1] + '"dev,system:masters"\n')
    assert _groups_of(users_home, "legacy") == [("dev", "system:masters")]

    listed = run_cli(["users", "list"], home=users_home.root)
    assert listed.exit_code == 0 and "legacy" in listed.stdout
    (warning,) = _warnings(listed.stderr)  # none for `first`
    assert "'legacy' cannot log in" in warning and "'system:masters' is privileged" in warning

    before = home_state(users_home.root)
    response = _login(users_home, "legacy")
    assert response.status_code == 403 and response.json is not None and "token" not in response.json
    assert before.changes(home_state(users_home.root)) == []
    assert _login(users_home, "first").status_code == 200  # the twin: the file's other users log in

    changed = run_cli(["users", "passwd", "legacy", "--password-stdin"], home=users_home.root, input="new-pw\n")
    assert changed.exit_code == 0 and len(_warnings(changed.stderr)) == 1
    assert _groups_of(users_home, "legacy") == [("dev", "system:masters")]
