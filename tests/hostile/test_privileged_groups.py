"""Privileged groups through every path that mints or refreshes an identity.

A group that holds power in the cluster is refused by default wherever authsvc puts a group
into a credential: `system:masters` (bypasses RBAC), every other `system:` name (the Node
authorizer's `system:nodes`, kubeadm's bootstrap token group) and kubeadm's
`kubeadm:cluster-admins`, which kubeadm >= 1.29 binds to cluster-admin (admin.conf's group).
The paths: `certs sign` (a CSR's O), `certs create -g`, `issue -g`, `token create-user -g`,
`users add -g`, POST /login (a directory group, a users-file group), review time (a group
added in the directory or the users file after the login) and external issuers (a token's
groups claim, the directory groups added for `groups_from_ldap`). One list
(`pki.policy.PRIVILEGED_GROUPS`), one opt-in (`pki.policy.allowed_groups`).

Each refusal: exit 1 with one line naming the group and nothing written (CLI), 403 and nothing
recorded (/login), not authenticated, or authenticated without the group (review). The twin
of every path is an ordinary group, minted into the credential. kubeadm's own files keep their
groups: `authsvc init` and `certs renew` issue them as the operator, not through the policy.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from flask import Flask
from flask.testing import FlaskClient

from authsvc.home.opened import Home, open_home
from authsvc.login.users_file import StaticUser, hash_password, read_users, write_users
from authsvc.settings import settings_from_mapping
from pki.clock import FixedClock
from pki.names import subject_user
from tests.components.slapd import DEFAULT_GROUPS, DEFAULT_USERS, Group, Slapd, User
from tests.conftest import CliResult, run_cli
from tests.hostile.support import home_state, one_error_line
from tests.hostile.test_csr import csr, subject
from tests.ldap.fixtures import require_slapd
from tests.login.fixtures import CHEAP_HASHER, MakeHome, basic
from tests.webhook.jwks import Issuer
from tests.webhook.support import review_body

PRIVILEGED = [
    "system:masters",
    "kubeadm:cluster-admins",
    "system:nodes",
    "system:bootstrappers:kubeadm:default-node-token",
]
ORDINARY = "team-x"  # every path's twin
GROUPS = [*PRIVILEGED, ORDINARY]
AppFor = Callable[[Home], Flask]


def _group_params() -> list[Any]:
    return [pytest.param(g, id=g if g in PRIVILEGED else f"{g} (the twin)") for g in GROUPS]


# -- the command line ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CliPath:
    argv: Callable[[Path, str], list[str]]  # (an empty output folder, the group) -> arguments
    minted: Callable[[Home, Path, CliResult], tuple[str, ...]]  # the groups in what was made
    input: str | None = None


def _sign_argv(out: Path, group: str) -> list[str]:
    request = out.parent / "alice.csr"
    request.write_bytes(csr(subject("alice", group)))
    return ["certs", "sign", str(request), "-o", str(out / "alice.crt")]


def _cert_groups(path: Path) -> tuple[str, ...]:
    return subject_user(x509.load_pem_x509_certificate(path.read_bytes()).subject)[1]


def _kubeconfig_groups(path: Path) -> tuple[str, ...]:
    user = yaml.safe_load(path.read_text())["users"][0]["user"]
    pem = base64.b64decode(user["client-certificate-data"])
    return subject_user(x509.load_pem_x509_certificate(pem).subject)[1]


def _token_groups(home: Home, _out: Path, result: CliResult) -> tuple[str, ...]:
    verified = run_cli(["token", "verify", "-", "-o", "json"], home=home.root, input=result.stdout)
    assert verified.exit_code == 0, verified.stderr
    return tuple(json.loads(verified.stdout)["groups"])


def _users_file_groups(home: Home, _out: Path, _result: CliResult) -> tuple[str, ...]:
    (user,) = read_users(home.layout.path(home.settings.login.users_file))
    return user.groups


CLI_PATHS: dict[str, CliPath] = {
    "certs sign": CliPath(_sign_argv, lambda _h, out, _r: _cert_groups(out / "alice.crt")),
    "certs create -g": CliPath(
        lambda out, g: ["certs", "create", "alice", "-g", g, "--out-dir", str(out)],
        lambda _h, out, _r: _cert_groups(out / "alice.crt"),
    ),
    "issue -g": CliPath(
        lambda out, g: ["issue", "alice", "-g", g, "-o", str(out / "alice.kubeconfig")],
        lambda _h, out, _r: _kubeconfig_groups(out / "alice.kubeconfig"),
    ),
    "token create-user -g": CliPath(lambda _out, g: ["token", "create-user", "alice", "-g", g], _token_groups),
    "users add -g": CliPath(
        lambda _out, g: ["users", "add", "alice", "-g", g, "--password-stdin"], _users_file_groups, "alice-pw\n"
    ),
}


def _run(home: Home, tmp_path: Path, path: str, group: str) -> tuple[CliResult, Path]:
    out = tmp_path / "out"
    out.mkdir(parents=True)
    cli = CLI_PATHS[path]
    return run_cli(cli.argv(out, group), home=home.root, input=cli.input), out


def _set_policy(home: Home, **policy: Any) -> Home:
    """The home with these `pki.policy` keys written into its authsvc.yaml (as an operator would)."""
    config = yaml.safe_load(home.layout.config_path.read_text())
    config["pki"]["policy"].update(policy)
    home.layout.config_path.write_text(yaml.safe_dump(config))
    return open_home(home.root, clock=home.clock, environ={})


@pytest.mark.parametrize("path", list(CLI_PATHS))
def test_the_twin_is_minted(home: Home, tmp_path: Path, path: str) -> None:
    result, out = _run(home, tmp_path, path, ORDINARY)
    assert result.exit_code == 0, result.stderr
    assert CLI_PATHS[path].minted(home, out, result) == (ORDINARY,)


@pytest.mark.parametrize("group", PRIVILEGED)
@pytest.mark.parametrize("path", list(CLI_PATHS))
def test_a_privileged_group_is_refused_and_nothing_is_written(
    shared_home: Home, tmp_path: Path, path: str, group: str
) -> None:
    before = home_state(shared_home.root)
    result, out = _run(shared_home, tmp_path, path, group)
    assert (result.exit_code, result.stdout) == (1, ""), result
    assert f"group {group!r} is privileged" in one_error_line(result.stderr)
    assert before.changes(home_state(shared_home.root)) == []
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("path", list(CLI_PATHS))
def test_the_allow_list_opts_in(home: Home, tmp_path: Path, path: str) -> None:
    """A break-glass admin: the operator names the group in pki.policy.allowed_groups."""
    home = _set_policy(home, allowed_groups=["kubeadm:cluster-admins"])
    result, out = _run(home, tmp_path, path, "kubeadm:cluster-admins")
    assert result.exit_code == 0, result.stderr
    assert CLI_PATHS[path].minted(home, out, result) == ("kubeadm:cluster-admins",)


@pytest.mark.parametrize(
    "denied_groups",
    [pytest.param(["system:*"], id="the old default, as every authsvc init wrote it"), pytest.param([], id="none")],
)
def test_a_written_out_denied_groups_does_not_reopen_the_privileged_groups(
    home: Home, tmp_path: Path, denied_groups: list[str]
) -> None:
    home = _set_policy(home, denied_groups=denied_groups, denied_users=denied_groups)
    for path in CLI_PATHS:
        result, _out = _run(home, tmp_path / path.replace(" ", "-"), path, "kubeadm:cluster-admins")
        assert result.exit_code == 1 and "'kubeadm:cluster-admins' is privileged" in one_error_line(result.stderr)
    refused = run_cli(["certs", "create", "system:kube-scheduler"], home=home.root)
    assert refused.exit_code == 1 and "is privileged" in one_error_line(refused.stderr)


def test_kubeadms_own_files_keep_their_groups(home: Home) -> None:
    """init issued them (the home's template) and `certs renew` renews them under the default policy."""
    expected = {
        "admin.conf": ("kubeadm:cluster-admins",),
        "super-admin.conf": ("system:masters",),
        "apiserver-kubelet-client": ("kubeadm:cluster-admins",),
    }
    result = run_cli(["certs", "renew", *expected], home=home.root)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count("renewed ") == 3
    assert _kubeconfig_groups(home.root / "admin.conf") == expected["admin.conf"]
    assert _kubeconfig_groups(home.root / "super-admin.conf") == expected["super-admin.conf"]
    assert _cert_groups(home.layout.cert_path("apiserver-kubelet-client")) == expected["apiserver-kubelet-client"]


# -- /login and review time (a real slapd) -------------------------------------------------------

IDP = "https://idp.example"  # groups_from_ldap, no prefixes: its names reach the review as they are


def _uid(kind: str, group: str) -> str:
    return f"{kind}{GROUPS.index(group)}"


def _dn(uid: str) -> str:
    return User(uid, "").dn


@pytest.fixture(scope="module")
def directory() -> Iterator[Slapd]:
    """The default dataset plus, for each group G: `login<i>` and `oidc<i>` in G, and `late<i>`
    in no group yet (review-time rows add it). One server for the module: each row has its users."""
    require_slapd()
    users = [User(_uid(kind, g), f"{_uid(kind, g)}-pw") for g in GROUPS for kind in ("login", "late", "oidc")]
    groups = [Group(g, (_dn(_uid("login", g)), _dn(_uid("oidc", g)))) for g in GROUPS]
    with Slapd(users=[*DEFAULT_USERS, *users], groups=[*DEFAULT_GROUPS, *groups]) as server:
        yield server


@dataclass
class World:
    home: Home
    client: FlaskClient
    idp: Issuer

    def login(self, username: str, password: str) -> Any:
        return self.client.post("/login", headers=basic(username, password))

    def review(self, token: str) -> dict[str, Any]:
        response = self.client.post("/authenticate", json=review_body(token))
        assert response.status_code == 200, response.data
        status: dict[str, Any] = response.get_json()["status"]
        return status

    def write_users(self, groups: tuple[str, ...]) -> None:
        """The users file holding `filed` (password filed-pw) in `groups`, written as any writer
        of an older authsvc (or an editor) could have written it."""
        user = StaticUser("filed", "filed-uid", groups, hash_password("filed-pw", CHEAP_HASHER))
        write_users(self.home.layout.path(self.home.settings.login.users_file), [user])


@pytest.fixture
def world(make_home: MakeHome, directory: Slapd, app_for: AppFor) -> World:
    """A login home (users file, then the directory) whose webhook also trusts IDP."""
    base = make_home(directory)
    idp = Issuer(IDP)
    (base.root / "idp-jwks.json").write_text(json.dumps(idp.jwks()))
    config = base.settings.model_dump(mode="json")
    config["authn"]["issuers"] = [
        {"url": IDP, "audiences": ["kubernetes"], "jwks_file": "idp-jwks.json", "groups_from_ldap": True}
    ]
    home = dataclasses.replace(base, settings=settings_from_mapping(config))
    return World(home, app_for(home).test_client(), idp)


def _assert_carries(status: dict[str, Any], group: str) -> None:
    assert status["authenticated"] is True, status
    assert group in status["user"]["groups"]


@pytest.mark.slapd
@pytest.mark.parametrize("group", _group_params())
@pytest.mark.parametrize("source", ["ldap", "users"])
def test_a_privileged_group_at_login_is_refused(world: World, source: str, group: str) -> None:
    if source == "ldap":
        username = _uid("login", group)
    else:
        username = "filed"
        world.write_users((group,))
    before = home_state(world.home.root)
    response = world.login(username, f"{username}-pw")
    assert response.json is not None
    if group in PRIVILEGED:
        assert response.status_code == 403 and "token" not in response.json
        assert f"group {group!r} is privileged" in response.json["error"]
        assert before.changes(home_state(world.home.root)) == []
    else:
        assert response.status_code == 200 and response.json["groups"] == [group]
        _assert_carries(world.review(response.json["token"]), group)


@pytest.mark.slapd
@pytest.mark.parametrize("group", _group_params())
@pytest.mark.parametrize("source", ["ldap", "users"])
def test_a_privileged_group_added_after_the_login_refuses_the_token(
    world: World, directory: Slapd, clock: FixedClock, source: str, group: str
) -> None:
    if source == "ldap":
        username = _uid("late", group)
    else:
        username = "filed"
        world.write_users(())
    response = world.login(username, f"{username}-pw")
    assert response.status_code == 200 and response.json is not None, response.data
    token = response.json["token"]
    assert world.review(token)["authenticated"] is True
    if source == "ldap":
        directory.add_member(group, _dn(username))
    else:
        world.write_users((group,))
    clock.advance(dt.timedelta(seconds=61))  # ldap.group_cache_ttl (60 s) and the webhook's cache (1 s)
    status = world.review(token)
    if group in PRIVILEGED:
        assert status["authenticated"] is False and not status.get("user")
    else:
        _assert_carries(status, group)


@pytest.mark.slapd
@pytest.mark.parametrize("group", _group_params())
def test_an_external_issuers_token_cannot_claim_a_privileged_group(world: World, group: str) -> None:
    status = world.review(world.idp.token({"sub": "stranger", "groups": ["team-a", group]}))
    if group in PRIVILEGED:
        assert status["authenticated"] is False and not status.get("user")
    else:
        _assert_carries(status, group)


@pytest.mark.slapd
@pytest.mark.parametrize("group", _group_params())
def test_the_directory_does_not_add_a_privileged_group_to_an_external_user(world: World, group: str) -> None:
    status = world.review(world.idp.token({"sub": _uid("oidc", group), "groups": ["team-a"]}))
    assert status["authenticated"] is True, status
    expected = ["team-a"] if group in PRIVILEGED else ["team-a", group]
    assert status["user"]["groups"] == expected
