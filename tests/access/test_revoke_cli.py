"""`authsvc access list|revoke|restore` through the real entry point on a real home (no cluster:
tests/e2e/test_access_lifecycle.py runs them against a real API server), and the ban gate on
every command that mints: each refusal has its twin, every refused command changes nothing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import create_engine, inspect, text

from authsvc.home.opened import Home, open_home
from tests.conftest import CliResult, run_cli
from tests.hostile.support import SQLITE_SUFFIXES
from tests.oidc.support import signed_in

ENV = {"USER": "tester"}
STATIC_TOKEN = "static-alice-token-0123456789abcdef"


def cli(home: Home, *args: str) -> CliResult:
    return run_cli(list(args), home=home.root, env=ENV)


def ok(home: Home, *args: str) -> str:
    result = cli(home, *args)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def listed(home: Home, user: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(ok(home, "access", "list", user, "-o", "json"))
    return document


def snapshot(root: Path) -> dict[str, Any]:
    """A SHA-256 of every file in the home (the audit trail included; SQLite's own files change on
    reads) and every row of every table of its database."""
    files = {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file() and not p.name.endswith(SQLITE_SUFFIXES)
    }
    engine = create_engine(f"sqlite:///{root / 'authsvc.db'}")
    try:
        with engine.connect() as conn:
            tables = inspect(conn).get_table_names()
            rows = {t: sorted(map(repr, conn.execute(text(f'SELECT * FROM "{t}"')).all())) for t in tables}
    finally:
        engine.dispose()
    return {"files": files, "rows": rows}


@pytest.fixture
def people(home: Home, tmp_path: Path) -> Home:
    """alice: a cert kubeconfig, a token kubeconfig, a static token; bob: a cert kubeconfig."""
    data = home.settings.model_dump(mode="json")
    data["authn"]["tokenfile"]["path"] = "tokens.csv"
    home.layout.config_path.write_text(yaml.safe_dump(data, sort_keys=False))
    (home.root / "tokens.csv").write_text(f"sha256:{hashlib.sha256(STATIC_TOKEN.encode()).hexdigest()},alice,a,ops\n")
    home = open_home(home.root, clock=home.clock, environ={})
    ok(home, "issue", "alice", "-g", "dev", "-o", str(tmp_path / "alice.kubeconfig"))
    ok(home, "issue", "alice", "-g", "dev", "--mode", "token", "-o", str(tmp_path / "alice-token.kubeconfig"))
    ok(home, "issue", "bob", "-g", "dev", "-o", str(tmp_path / "bob.kubeconfig"))
    return home


def test_list_shows_each_credential_and_after_revoke_each_is_revoked_with_who_and_why(people: Home) -> None:
    before = listed(people, "alice")
    assert [c["status"] for c in before["certificates"]] == ["valid"]
    assert [(t["kind"], t["status"]) for t in before["tokens"]] == [("user", "valid")]
    assert [t["stored"] for t in before["staticTokens"]] == ["sha256"]
    assert before["revoked"] is None and before["groups"] == ["dev", "ops"]
    assert [k["mode"] for k in before["kubeconfigs"]] == ["cert", "token"]

    report = ok(people, "access", "revoke", "alice", "--reason", "left the company")

    assert "revoked the access of alice (left the company)" in report
    assert "the API server does not check revocation; it stays valid until" in report
    assert "bindings: not checked: no cluster connection" in report
    after = listed(people, "alice")
    assert after["revoked"]["bannedBy"] == "cli:tester" and after["revoked"]["reason"] == "left the company"
    [cert] = after["certificates"]
    assert (cert["status"], cert["revokedBy"], cert["revocationReason"], cert["revocationComment"]) == (
        "revoked", "cli:tester", "privilegeWithdrawn", "left the company")  # fmt: skip
    [token] = after["tokens"]
    assert (token["status"], token["revokedBy"]) == ("revoked", "cli:tester")
    assert "left the company" in token["revocationReason"]
    assert after["staticTokens"] == []  # removed from the webhook's token file
    bob = listed(people, "bob")  # the twin
    assert bob["revoked"] is None and [c["status"] for c in bob["certificates"]] == ["valid"]


def test_nothing_is_minted_for_a_revoked_user_until_restore(people: Home, tmp_path: Path) -> None:
    ok(people, "access", "revoke", "alice")
    refusals = [
        ("issue", "alice", "-o", str(tmp_path / "again.kubeconfig")),
        ("issue", "alice", "--mode", "token", "-o", str(tmp_path / "again-token.kubeconfig")),
        ("certs", "create", "alice", "--out-dir", str(tmp_path / "certs")),
        ("token", "create-user", "alice"),
        ("issue", "ALICE", "-o", str(tmp_path / "spelled.kubeconfig")),  # another spelling of the name
    ]
    for args in refusals:
        before = snapshot(people.root)
        result = cli(people, *args)
        assert result.exit_code == 1 and "access of" in result.stderr and "is revoked" in result.stderr, (args, result)
        assert snapshot(people.root) == before, args
    ok(people, "issue", "bob", "-o", str(tmp_path / "bob-again.kubeconfig"))  # the twin

    restored = ok(people, "access", "restore", "alice")
    assert "restored the access of alice" in restored and "stay revoked" in restored
    ok(people, "issue", "alice", "-o", str(tmp_path / "after-restore.kubeconfig"))
    statuses = [c["status"] for c in listed(people, "alice")["certificates"]]
    assert sorted(statuses) == ["revoked", "valid"]  # the old one stays revoked


def test_an_unknown_user_is_refused_and_nothing_changes(people: Home) -> None:
    before = snapshot(people.root)
    result = cli(people, "access", "revoke", "zed")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: authsvc has no record of user 'zed'")
    assert snapshot(people.root) == before
    restore = cli(people, "access", "restore", "bob")  # not revoked
    assert restore.exit_code == 1 and "is not revoked" in restore.stderr
    assert snapshot(people.root) == before


def test_dry_run_changes_nothing_and_says_what_would_happen(people: Home) -> None:
    before = snapshot(people.root)
    report = ok(people, "access", "revoke", "alice", "--dry-run")
    assert report.startswith("dry run, nothing changed")
    assert "client certificate" in report and "token" in report
    assert snapshot(people.root) == before
    document = json.loads(ok(people, "access", "revoke", "alice", "--dry-run", "-o", "json"))
    assert document["dryRun"] is True and {c["kind"] for c in document["credentials"]} >= {"ban", "token"}
    assert snapshot(people.root) == before


def test_revoking_twice_finishes_what_is_left_and_changes_nothing_more(people: Home) -> None:
    ok(people, "access", "revoke", "alice", "--reason", "first")
    again = ok(people, "access", "revoke", "alice", "--reason", "second")
    assert "was revoked already (revoked by cli:tester" in again and ": first)" in again
    assert listed(people, "alice")["revoked"]["reason"] == "first"


def test_the_audit_trail_has_a_line_per_action_in_order_and_no_secret(people: Home, tmp_path: Path) -> None:
    ok(people, "access", "revoke", "alice", "--reason", "left")
    cli(people, "issue", "alice", "-o", str(tmp_path / "refused.kubeconfig"))
    ok(people, "access", "restore", "alice")
    text = (people.root / "audit.log").read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    actions = [(line["action"], line["subject"]) for line in lines]
    assert actions == [
        ("cert.issue", "alice"),
        ("token.issue", "alice"),
        ("cert.issue", "bob"),
        ("access.ban", "alice"),
        ("token.revoke", "alice"),
        ("cert.revoke", "alice"),
        ("static-token.remove", "alice"),
        ("access.restore", "alice"),
    ]
    assert all(line["actor"] == "cli:tester" for line in lines)
    times = [line["time"] for line in lines]
    assert times == sorted(times)
    token = yaml.safe_load((tmp_path / "alice-token.kubeconfig").read_text())["users"][0]["user"]["token"]
    key = yaml.safe_load((tmp_path / "alice.kubeconfig").read_text())["users"][0]["user"]["client-key-data"]
    for secret in (token, key, STATIC_TOKEN, "PRIVATE KEY"):
        assert secret not in text


def test_list_of_everyone_has_a_line_per_person(people: Home) -> None:
    table = ok(people, "access", "list")
    rows = {line.split()[0]: line.split() for line in table.splitlines()[1:]}
    assert rows["alice"][1:4] == ["no", "1", "1"] and rows["bob"][1:4] == ["no", "1", "0"]
    ok(people, "access", "revoke", "alice")
    rows = {line.split()[0]: line.split() for line in ok(people, "access", "list").splitlines()[1:]}
    assert rows["alice"][1:4] == ["yes", "0", "0"] and rows["bob"][1] == "no"
    everyone = json.loads(ok(people, "access", "list", "-o", "json"))
    assert {"alice", "bob", "kubernetes-admin"} <= {person["user"] for person in everyone}


def test_certs_revoke_and_token_revoke_record_who_say_what_the_api_server_does_and_audit(people: Home) -> None:
    before = listed(people, "alice")
    serial, jti = before["certificates"][0]["serial"], before["tokens"][0]["jti"]
    revoked = cli(people, "certs", "revoke", serial, "--reason", "keyCompromise", "--comment", "laptop stolen")
    assert revoked.exit_code == 0 and "kube-apiserver does not check revocation" in revoked.stderr
    assert ok(people, "token", "revoke", jti, "--reason", "laptop stolen") == f"revoked token {jti}\n"
    assert ok(people, "token", "revoke", jti) == f"token {jti} was revoked already\n"  # the twin: nothing more
    after = listed(people, "alice")
    [cert], [token] = after["certificates"], after["tokens"]
    assert (cert["revokedBy"], cert["revocationReason"], cert["revocationComment"]) == (
        "cli:tester", "keyCompromise", "laptop stolen")  # fmt: skip
    assert (token["revokedBy"], token["revocationReason"]) == ("cli:tester", "laptop stolen")
    lines = [json.loads(line) for line in (people.root / "audit.log").read_text().splitlines()]
    assert [(line["action"], line["reason"]) for line in lines[-2:]] == [
        ("cert.revoke", "laptop stolen"), ("token.revoke", "laptop stolen")]  # fmt: skip
    assert after["revoked"] is None  # revoking one credential bans nobody


def test_a_service_account_token_is_reported_as_verified_by_the_api_server_itself(home: Home) -> None:
    """kube-apiserver checks service-account tokens with sa.pub: the report says the revocation
    does not reach it (the twin: a user token's line says the webhook refuses it)."""
    ok(home, "token", "create", "-n", "ci", "--serviceaccount", "deployer", "--uid", "0f6c2d0e-1")
    ok(home, "token", "create-user", "carol", "-g", "dev")

    sa_report = ok(home, "access", "revoke", "system:serviceaccount:ci:deployer", "--dry-run")
    user_report = ok(home, "access", "revoke", "carol", "--dry-run")

    assert "service-account token" in sa_report and "never asks authsvc" in sa_report
    assert "service-account token" not in user_report and "never asks authsvc" not in user_report


def test_oidc_sign_ins_are_listed_ended_by_revoke_and_stay_ended_after_restore(people: Home) -> None:
    """A refresh token of alice's sign-in is refused after `access revoke` and still after
    `access restore` (a restore gives no credential back); bob's, the twin, keeps rotating."""
    alice_store, alice_refresh = signed_in(people, "alice")
    bob_store, bob_refresh = signed_in(people, "bob")
    [sign_in] = listed(people, "alice")["oidcSignIns"]
    assert (sign_in["client"], sign_in["status"], sign_in["source"]) == ("kubectl", "valid", "users")

    report = ok(people, "access", "revoke", "alice")
    assert f"OIDC sign-in {sign_in['id'][:8]}…: ended" in report
    assert listed(people, "alice")["oidcSignIns"] == []
    [ended] = json.loads(ok(people, "access", "list", "alice", "--all", "-o", "json"))["oidcSignIns"]
    assert ended["status"] == "revoked" and ended["revocationReason"] == "access revoke by cli:tester"
    ok(people, "access", "restore", "alice")
    assert alice_store.find_refresh_token(alice_refresh, "kubectl") is None
    assert alice_store.rotate_refresh_token(alice_refresh, "kubectl") is None
    assert bob_store.rotate_refresh_token(bob_refresh, "kubectl") is not None
    lines = [json.loads(line) for line in (people.root / "audit.log").read_text().splitlines()]
    [line] = [line for line in lines if line["action"] == "oidc-sign-in.revoke"]
    assert (line["subject"], line["ids"], line["client"]) == ("alice", {"family": sign_in["id"]}, "kubectl")


def test_a_person_known_only_by_a_sign_in_is_listed_and_can_be_revoked(home: Home) -> None:
    signed_in(home, "carol")
    header, *rows = ok(home, "access", "list").splitlines()
    [carol] = [dict(zip(header.split(), row.split(), strict=False)) for row in rows if row.startswith("carol ")]
    assert carol["SIGN-INS"] == "1" and carol["TOKENS"] == "0", carol
    assert "OIDC sign-in" in ok(home, "access", "revoke", "carol", "--dry-run")
    assert listed(home, "carol")["oidcSignIns"][0]["status"] == "valid"  # a dry run changes nothing
