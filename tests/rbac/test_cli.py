"""`authsvc rbac suggest` through the real entry point: output, exit codes, messages."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import run_cli
from tests.rbac.support import event, line, write_log

EVENTS: list[dict[str, Any] | str] = [
    event("list", "pods", namespace="ns1"),
    event("get", "configmaps", namespace="ns1", name="c1"),
    event("create", "secrets", namespace="ns2", name="s1"),
    event("list", "nodes"),
    event("get", None, uri="/api?timeout=32s"),
]


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return write_log(tmp_path / "audit.log", EVENTS)


def test_yaml_documents_for_kubectl_apply(log: Path) -> None:
    result = run_cli(["rbac", "suggest", "--audit-log", str(log), "--user", "alice"])

    assert result.exit_code == 0, result.stderr
    documents = list(yaml.safe_load_all(result.stdout))
    assert [(d["kind"], d["metadata"].get("namespace")) for d in documents] == [
        ("ClusterRole", None),
        ("ClusterRoleBinding", None),
        ("Role", "ns1"),
        ("RoleBinding", "ns1"),
        ("Role", "ns2"),
        ("RoleBinding", "ns2"),
    ]
    assert documents[2]["rules"] == [
        {"apiGroups": [""], "resourceNames": ["c1"], "resources": ["configmaps"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
    ]
    assert documents[4]["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}]
    assert "5 requests of user alice" in result.stderr and "need no rule" in result.stderr


def test_json_is_one_list_with_the_same_objects(log: Path) -> None:
    as_yaml = run_cli(["rbac", "suggest", "--audit-log", str(log), "--user", "alice"])
    as_json = run_cli(["rbac", "suggest", "--audit-log", str(log), "--user", "alice", "-o", "json"])

    data = json.loads(as_json.stdout)
    assert data["kind"] == "List" and data["apiVersion"] == "v1"
    assert data["items"] == list(yaml.safe_load_all(as_yaml.stdout))


def test_the_same_log_gives_the_same_bytes(tmp_path: Path, log: Path) -> None:
    reordered = write_log(tmp_path / "reordered.log", list(reversed(EVENTS)))

    first = run_cli(["rbac", "suggest", "--audit-log", str(log), "--user", "alice"])
    second = run_cli(["rbac", "suggest", "--audit-log", str(reordered), "--user", "alice"])

    assert first.stdout == second.stdout


def test_standard_input(log: Path) -> None:
    result = run_cli(["rbac", "suggest", "--audit-log", "-", "--user", "alice"], input=log.read_text())

    assert result.exit_code == 0 and "kind: Role" in result.stdout, result.stderr


def test_no_requests_of_the_subject_exits_1_with_a_clear_message(log: Path) -> None:
    result = run_cli(["rbac", "suggest", "--audit-log", str(log), "--user", "mallory"])

    assert result.exit_code == 1 and result.stdout == ""
    assert f"error: no requests of user mallory in {log} (5 lines read)" in result.stderr
    assert "Traceback" not in result.stderr


def test_hostile_lines_are_listed_by_number_and_fail_the_command(tmp_path: Path) -> None:
    log = write_log(
        tmp_path / "audit.log",
        [
            EVENTS[0],
            "this is not json",
            line(event("get", "pods", version="audit.k8s.io/v1alpha1", user="bob")),
            EVENTS[3],
        ],
    )
    args = ["rbac", "suggest", "--audit-log", str(log), "--user", "alice"]

    result = run_cli(args)

    assert result.exit_code == 1 and result.stdout == ""  # nothing to apply from a log read in part
    assert f"warning: {log} line 2: not JSON" in result.stderr
    assert f"warning: {log} line 3: apiVersion 'audit.k8s.io/v1alpha1' is not one of" in result.stderr
    assert f"error: 2 unusable lines in the audit log (first: {log} line 2: not JSON)" in result.stderr
    assert "--max-bad-lines 2" in result.stderr and "Traceback" not in result.stderr

    accepted = run_cli([*args, "--max-bad-lines", "2"])
    assert accepted.exit_code == 0 and "kind: ClusterRole" in accepted.stdout
    assert f"warning: {log} line 2: not JSON" in accepted.stderr


def test_a_truncated_gzip_log_fails_and_says_where(tmp_path: Path) -> None:
    text = "".join(line(event("list", "pods", namespace="ns1", audit_id=str(i))) + "\n" for i in range(3000))
    whole = gzip.compress(text.encode())
    log = tmp_path / "audit.log.1.gz"
    log.write_bytes(whole[: len(whole) * 2 // 3])

    result = run_cli(["rbac", "suggest", "--audit-log", str(log), "--user", "alice"])

    assert result.exit_code == 1 and result.stdout == ""
    assert "the gzip stream ends early (truncated file)" in result.stderr and "Traceback" not in result.stderr


def test_a_missing_log_is_a_one_line_error(tmp_path: Path) -> None:
    result = run_cli(["rbac", "suggest", "--audit-log", str(tmp_path / "nope.log"), "--user", "alice"])

    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: No such file or directory: {tmp_path / 'nope.log'}"


def test_nothing_to_grant_is_not_an_error(tmp_path: Path) -> None:
    log = write_log(tmp_path / "audit.log", [event("get", None, uri="/version")])

    result = run_cli(["rbac", "suggest", "--audit-log", str(log), "--user", "alice"])

    assert result.exit_code == 0 and result.stdout == ""
    assert "0 objects" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "name exactly one subject"),
        (["--user", "alice", "--group", "dev"], "name exactly one subject"),
        (["--serviceaccount", "deployer"], "NAMESPACE:NAME"),
        (["--user", "system:serviceaccount:ci:x"], "use --serviceaccount"),
        (["--user", "alice", "--name-prefix", "a/b"], "--name-prefix"),
        (["--user", "alice", "--dry-run", "--apply", "--kubeconfig", "k"], "cannot be combined"),
        (["--user", "alice", "-o", "table"], "Invalid value for '-o'"),
    ],
)
def test_bad_usage_exits_2(log: Path, args: list[str], message: str) -> None:
    result = run_cli(["rbac", "suggest", "--audit-log", str(log), *args])

    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert result.stdout == ""


def test_apply_with_an_unusable_kubeconfig_changes_nothing_and_exits_1(tmp_path: Path, log: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")

    result = run_cli(
        ["rbac", "suggest", "--audit-log", str(log), "--user", "alice", "--apply", "--kubeconfig", str(kubeconfig)]
    )

    assert result.exit_code == 1 and "cannot use --kubeconfig" in result.stderr, result.stderr


def test_apply_without_a_cluster_connection_says_how_to_get_one(tmp_path: Path, log: Path) -> None:
    result = run_cli(
        ["rbac", "suggest", "--audit-log", str(log), "--user", "alice", "--apply"],
        home=tmp_path / "no-home",
        env={"KUBECONFIG": ""},
    )
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.endswith("error: no cluster connection: set cluster.api.kubeconfig or --kubeconfig\n")
