"""Hostile names where they reach file names and YAML: `authsvc issue`, `certs create`,
`token create-user` (and their `-g`). Each is refused with one error line (exit 1, or 2 for
bad usage), no traceback, and nothing written: not in the home, its inventory, or the
current folder (where `issue` writes USER.kubeconfig by default).

Groups never reach a file name, and Kubernetes allows any string as a group: the YAML-looking
ones are accepted, and must come back from the written kubeconfig exactly as given.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID

from authsvc.home.opened import Home
from tests.conftest import run_cli
from tests.hostile.support import home_state, one_error_line
from tests.kubeconfig.test_issue_cli import workdir  # an empty current folder: nothing may appear in it

__all__ = ["workdir"]

# (row id, the name as given on the command line)
NAMES: list[tuple[str, str]] = [
    ("parent path", "../x"),
    ("absolute path", "/etc/passwd"),
    ("dot dot", ".."),
    ("newline", "a\nb"),
    ("YAML mapping", "a: b"),
    ("YAML list item", "- x"),
    ("YAML tag", "!!python/object:os.system"),
    ("YAML alias", "*x"),
    ("option-like", "-rf"),
    ("option-like after --", "--\x00-rf"),  # split below into two arguments
    ("very long", "a" * 10_000),
    ("NUL", "a\x00b"),
    ("tab", "a\tb"),
    ("empty", ""),
    ("white space around", " alice "),
]
GROUPS_KEPT = {"YAML mapping", "YAML list item", "YAML alias", "option-like"}
COMMANDS: dict[str, list[str]] = {
    "issue": ["issue", "{}"],
    "issue -g": ["issue", "alice", "-g", "{}"],
    "certs create": ["certs", "create", "{}"],
    "certs create -g": ["certs", "create", "alice", "-g", "{}"],
    "token create-user": ["token", "create-user", "{}"],
}


def _argv(command: str, name: str) -> list[str]:
    words = name.split("\x00") if name.startswith("--\x00") else [name]
    argv: list[str] = []
    for word in COMMANDS[command]:
        argv += words if word == "{}" else [word]
    return argv


@pytest.mark.parametrize("command", list(COMMANDS))
def test_the_twin_is_accepted(home: Home, workdir: Path, command: str) -> None:
    result = run_cli(_argv(command, "dev" if command.endswith("-g") else "alice"), home=home.root)
    assert result.exit_code == 0, result.stderr


def _refused() -> list[object]:
    return [
        pytest.param(command, name, id=f"{command}: {row}")
        for command in COMMANDS
        for row, name in NAMES
        if not (command.endswith("-g") and row in GROUPS_KEPT)
    ]


@pytest.mark.parametrize(("command", "name"), _refused())
def test_hostile_name_is_refused_and_nothing_is_written(
    shared_home: Home, workdir: Path, command: str, name: str
) -> None:
    before = home_state(shared_home.root)
    result = run_cli(_argv(command, name), home=shared_home.root)
    assert result.exit_code in (1, 2) and result.stdout == "", result
    one_error_line(result.stderr)
    assert before.changes(home_state(shared_home.root)) == []
    assert list(workdir.iterdir()) == [] and not (workdir.parent / "x.kubeconfig").exists()


@pytest.mark.parametrize("group", [pytest.param(name, id=row) for row, name in NAMES if row in GROUPS_KEPT])
def test_a_yaml_looking_group_comes_back_verbatim(home: Home, workdir: Path, group: str) -> None:
    result = run_cli(["issue", "alice", "-g", group, "-o", "alice.kubeconfig"], home=home.root)
    assert result.exit_code == 0, result.stderr
    config = yaml.safe_load((workdir / "alice.kubeconfig").read_text())
    pem = base64.b64decode(config["users"][0]["user"]["client-certificate-data"])
    certificate = x509.load_pem_x509_certificate(pem)
    assert [a.value for a in certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == [group]
    assert list(workdir.iterdir()) == [workdir / "alice.kubeconfig"]
