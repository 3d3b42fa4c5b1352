"""`authsvc tokens static add|list|remove` through the real entry point, and what the webhook
(the real app) makes of the file it writes; each refusal leaves the file as it was."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from authsvc.home.opened import Home, open_home
from authsvc.runtime import build_runtime
from authsvc.web.app import create_app
from tests.conftest import run_cli


@pytest.fixture
def static_home(home: Home) -> Home:
    """The session home with authn.tokenfile.path = tokens.csv (the webhook reads it)."""
    data = home.settings.model_dump(mode="json")
    data["authn"]["tokenfile"]["path"] = "tokens.csv"
    home.layout.config_path.write_text(yaml.safe_dump(data, sort_keys=False))
    return open_home(home.root, clock=home.clock, environ={})


def review(home: Home, token: str) -> dict[str, Any]:
    runtime = build_runtime(home)
    try:
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
        status: dict[str, Any] = create_app(runtime).test_client().post("/authenticate", json=body).json["status"]
        return status
    finally:
        runtime.close()


def add(home: Home, *args: str) -> str:
    result = run_cli(["tokens", "static", "add", *args], home=home.root)
    assert result.exit_code == 0, result.stderr
    token = result.stdout.strip()
    assert result.stdout == token + "\n" and len(token) >= 43
    return token


def test_an_added_token_authenticates_through_the_webhook_and_the_file_holds_only_its_hash(
    static_home: Home,
) -> None:
    token = add(static_home, "ci-bot", "-g", "ci", "-g", "deployers", "--uid", "u-7")
    text = (static_home.root / "tokens.csv").read_text()
    assert token not in text
    assert text == f'sha256:{hashlib.sha256(token.encode()).hexdigest()},ci-bot,u-7,"ci,deployers"\n'
    status = review(static_home, token)
    assert status["authenticated"] is True
    assert status["user"] == {"username": "ci-bot", "uid": "u-7", "groups": ["ci", "deployers"]}
    assert review(static_home, token[:-1] + ("A" if token[-1] != "A" else "B"))["authenticated"] is False  # the twin


def test_plain_writes_the_token_for_kube_apiservers_own_file_0600(static_home: Home, tmp_path: Path) -> None:
    target = tmp_path / "apiserver-tokens.csv"
    token = add(static_home, "ops", "--plain", "--file", str(target))
    assert target.read_text().startswith(f"{token},ops,")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_list_shows_fingerprints_never_tokens(static_home: Home) -> None:
    token = add(static_home, "ci-bot", "-g", "ci")
    listed = run_cli(["tokens", "static", "list", "-o", "json"], home=static_home.root)
    assert listed.exit_code == 0 and token not in listed.stdout + listed.stderr
    assert '"token": "' + hashlib.sha256(token.encode()).hexdigest()[:12] in listed.stdout


def test_remove_ends_the_token_and_an_unknown_user_changes_nothing(static_home: Home) -> None:
    token = add(static_home, "ci-bot")
    kept = add(static_home, "other")
    before = (static_home.root / "tokens.csv").read_bytes()
    missing = run_cli(["tokens", "static", "remove", "nobody"], home=static_home.root)
    assert missing.exit_code == 1 and missing.stderr.startswith("error: no token of 'nobody'")
    assert (static_home.root / "tokens.csv").read_bytes() == before
    assert run_cli(["tokens", "static", "remove", "ci-bot"], home=static_home.root).exit_code == 0
    assert review(static_home, token)["authenticated"] is False
    assert review(static_home, kept)["authenticated"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["mallory", "-g", "system:masters"], "system:masters"),
        (["mallory", "-g", "kubeadm:cluster-admins"], "kubeadm:cluster-admins"),
        (["system:admin"], "system:admin"),
        (["ci-bot", "-g", "dev,ops"], "contains ','"),
    ],
)
def test_refusals_are_one_line_and_write_nothing(static_home: Home, args: list[str], message: str) -> None:
    result = run_cli(["tokens", "static", "add", *args], home=static_home.root)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert not (static_home.root / "tokens.csv").exists()


def test_without_a_configured_file_it_says_which_setting(home: Home) -> None:
    result = run_cli(["tokens", "static", "add", "ci-bot"], home=home.root)
    assert result.exit_code == 1 and "authn.tokenfile.path is not set" in result.stderr and result.stdout == ""
