"""--merge-into: kubectl's rules for one file (others untouched, same names only with --force)."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from authsvc.home.opened import Home
from authsvc.kubeconfig.documents import KubeconfigConflict, load_kubeconfig, merge_conflicts, merge_kubeconfig
from authsvc.kubeconfig.issuer import CredentialInventory
from tests.conftest import run_cli
from tests.kubeconfig.conftest import Kubectl

PROD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [
        {"name": "prod", "cluster": {"server": "https://prod.example:6443", "insecure-skip-tls-verify": True}}
    ],
    "users": [{"name": "admin", "user": {"token": "admin-token"}}],
    "contexts": [{"name": "admin@prod", "context": {"cluster": "prod", "user": "admin", "namespace": "ops"}}],
    "current-context": "admin@prod",
    "preferences": {"colors": True},
    "extensions": [{"name": "site", "extension": {"owner": "platform"}}],
}


def entries(config: dict[str, Any], section: str) -> dict[str, Any]:
    return {e["name"]: e for e in config.get(section) or []}


@pytest.fixture
def existing(tmp_path: Path) -> Path:
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(PROD, sort_keys=False))
    path.chmod(0o600)
    return path


def merge(home: Home, path: Path, *args: str) -> Any:
    return run_cli(["issue", *args, "--merge-into", str(path)], home=home.root)


def test_merge_adds_entries_and_leaves_the_others_alone(home: Home, existing: Path, kubectl: Kubectl) -> None:
    result = merge(home, existing, "alice", "-g", "dev")

    assert result.exit_code == 0, result.stderr
    assert "current context stays 'admin@prod'; switch with: kubectl config use-context alice@kubernetes" in (
        result.stdout
    )
    merged = load_kubeconfig(existing)
    for section in ("clusters", "users", "contexts"):
        assert entries(merged, section)[PROD[section][0]["name"]] == PROD[section][0]
    assert (merged["current-context"], merged["preferences"], merged["extensions"]) == (
        "admin@prod",
        PROD["preferences"],
        PROD["extensions"],
    )
    view = kubectl.view(existing)
    assert [c["name"] for c in view["contexts"]] == ["admin@prod", "alice@kubernetes"]
    assert {u["name"] for u in view["users"]} == {"admin", "alice"}
    assert not existing.with_name("config.lock").exists()


def test_second_user_shares_the_identical_cluster_entry(home: Home, existing: Path, kubectl: Kubectl) -> None:
    assert merge(home, existing, "alice").exit_code == 0
    result = merge(home, existing, "bob")

    assert result.exit_code == 0, result.stderr
    view = kubectl.view(existing)  # kubectl reads entries into maps: it lists them sorted
    assert [c["name"] for c in view["clusters"]] == ["kubernetes", "prod"]
    assert [c["name"] for c in view["contexts"]] == ["admin@prod", "alice@kubernetes", "bob@kubernetes"]
    assert [c["name"] for c in load_kubeconfig(existing)["clusters"]] == ["prod", "kubernetes"]


def test_same_names_are_replaced_only_with_force(home: Home, existing: Path) -> None:
    assert merge(home, existing, "alice", "-g", "dev").exit_code == 0
    before = existing.read_bytes()

    refused = merge(home, existing, "alice", "-g", "ops")

    assert refused.exit_code == 1
    assert refused.stderr == "error: the kubeconfig already has user 'alice': use --force to replace\n"
    assert existing.read_bytes() == before
    assert len(CredentialInventory(home.stores.engine).credentials()) == 1  # refused before issuing

    forced = merge(home, existing, "alice", "-g", "ops", "--force")

    assert forced.exit_code == 0, forced.stderr
    merged = load_kubeconfig(existing)
    assert [u["name"] for u in merged["users"]] == ["admin", "alice"]  # replaced where it stood
    assert entries(merged, "users")["alice"] != entries(yaml.safe_load(before), "users")["alice"]
    assert entries(merged, "users")["admin"] == PROD["users"][0]


def test_same_cluster_name_with_another_server_is_a_conflict(home: Home, existing: Path) -> None:
    refused = merge(home, existing, "alice", "--cluster", "prod")

    assert refused.exit_code == 1
    assert "already has cluster 'prod'" in refused.stderr
    assert load_kubeconfig(existing) == PROD


def test_merge_creates_a_missing_file_0600_and_sets_its_context(home: Home, tmp_path: Path, kubectl: Kubectl) -> None:
    path = tmp_path / "new" / "config"

    result = merge(home, path, "alice")

    assert result.exit_code == 0, result.stderr
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert kubectl.view(path)["current-context"] == "alice@kubernetes"


def test_merge_through_a_symlink_keeps_the_link(home: Home, existing: Path, tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(existing)

    assert merge(home, link, "alice").exit_code == 0

    assert link.is_symlink()
    assert "alice" in entries(load_kubeconfig(existing), "users")


def test_locked_or_broken_kubeconfig_is_left_alone(home: Home, existing: Path) -> None:
    lock = existing.with_name("config.lock")
    lock.write_text("")
    locked = merge(home, existing, "alice")
    assert locked.exit_code == 1 and "is locked by another writer" in locked.stderr
    lock.unlink()

    existing.write_text("- just\n- a list\n")
    broken = merge(home, existing, "alice")
    assert broken.exit_code == 1
    assert broken.stderr.startswith("error: ") and "is not a kubeconfig" in broken.stderr
    assert existing.read_text() == "- just\n- a list\n"
    assert CredentialInventory(home.stores.engine).credentials() == []


def test_merge_function_does_not_modify_its_inputs() -> None:
    incoming = {
        "clusters": [{"name": "k", "cluster": {"server": "https://k"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "u@k", "context": {"cluster": "k", "user": "u"}}],
        "current-context": "u@k",
    }
    existing, saved = copy.deepcopy(PROD), copy.deepcopy(incoming)

    merged = merge_kubeconfig(existing, incoming)

    assert existing == PROD and incoming == saved
    assert merge_conflicts(merged, incoming) == []
    assert merge_kubeconfig(merged, incoming) == merged  # identical entries: nothing changes
    changed = {**incoming, "users": [{"name": "u", "user": {"token": "other"}}]}
    with pytest.raises(KubeconfigConflict, match="user 'u'"):
        merge_kubeconfig(merged, changed)
