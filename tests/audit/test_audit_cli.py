"""`authsvc audit`: the trail read back, filtered by user, time and action, as a table or as JSON
lines; older line shapes read in the schema's terms; a line that is not an audit line skipped."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from authsvc.home.opened import Home
from tests.conftest import run_cli

LINES = [
    # the schema
    {"time": "2030-01-01T10:00:00.000+00:00", "actor": "cli:root", "action": "cert.issue", "subject": "alice",
     "outcome": "ok", "reason": "", "ids": {"serial": "4fce"}},
    {"time": "2030-01-01T11:00:00.000+00:00", "actor": "cli:root", "action": "access.ban", "subject": "alice",
     "outcome": "ok", "reason": "left", "ids": {}},
    {"time": "2030-01-01T12:00:00.000+00:00", "actor": "kube-apiserver", "action": "tokenreview", "subject": "bob",
     "outcome": "allow", "reason": "", "ids": {"token": "88ac3a398c5b"}, "client": "10.0.0.1", "cached": False},
    # before the schema: a TokenReview decision, a login, a rotation change
    {"time": "2029-12-31T09:00:00.000+00:00", "decision": "deny", "user": None, "groups": [], "backend": "",
     "token": "0123456789ab", "client": "10.0.0.2", "cached": False},
    {"time": "2029-12-31T09:30:00.000+00:00", "event": "login", "result": "refused", "user": "alice",
     "backend": "ldap", "reason": "wrong password", "client": "10.0.0.3"},
    {"time": "2029-12-31T09:45:00.000+00:00", "event": "rotation", "action": "renew", "target": "apiserver",
     "result": "done", "detail": "serial ab, expires ...", "serial": "ab", "replaces": ["aa"]},
]  # fmt: skip
NOW = "--now=2030-01-01T12:30:00Z"


def write_trail(path: Path) -> Path:
    text = "\n".join(json.dumps(line) for line in LINES) + "\nnot json at all\n"
    path.write_text(text)
    return path


def audit(home: Home, *args: str) -> list[dict[str, object]]:
    result = run_cli([NOW, "audit", *args, "-o", "json"], home=home.root)
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_filters_by_user_time_and_action_on_the_homes_trail(home: Home) -> None:
    write_trail(home.root / "audit.log")
    assert [r["action"] for r in audit(home, "--user", "alice")] == ["cert.issue", "access.ban", "login"]
    assert [r["action"] for r in audit(home, "--user", "bob")] == ["tokenreview"]
    assert [r["action"] for r in audit(home, "--since", "3h")] == ["cert.issue", "access.ban", "tokenreview"]
    assert [r["action"] for r in audit(home, "--since", "2030-01-01T10:30:00Z")] == ["access.ban", "tokenreview"]
    assert [r["action"] for r in audit(home, "--action", "cert")] == ["cert.issue", "cert.renew"]
    assert [r["action"] for r in audit(home, "--action", "access.ban")] == ["access.ban"]
    assert audit(home, "--action", "access.ba") == []  # an action or a whole first part, not any prefix
    assert audit(home, "--user", "carol") == []


def test_older_lines_are_read_in_the_schemas_terms(home: Home) -> None:
    write_trail(home.root / "audit.log")
    review, login, renewal = audit(home, "--since", "2029-12-31T00:00:00Z")[3:]
    assert (review["action"], review["outcome"], review["ids"]) == ("tokenreview", "deny", {"token": "0123456789ab"})
    assert (login["action"], login["outcome"], login["subject"], login["reason"]) == (
        "login", "refused", "alice", "wrong password")  # fmt: skip
    assert (renewal["action"], renewal["subject"], renewal["ids"], renewal["actor"]) == (
        "cert.renew", "apiserver", {"serial": "ab"}, "rotate")  # fmt: skip


def test_a_table_by_default_and_skipped_lines_are_counted(home: Home) -> None:
    write_trail(home.root / "audit.log")
    result = run_cli([NOW, "audit", "--action", "access"], home=home.root)
    assert result.exit_code == 0
    header, row = result.stdout.splitlines()
    assert header.split()[:5] == ["TIME", "ACTOR", "ACTION", "SUBJECT", "OUTCOME"]
    assert row.split()[1:5] == ["cli:root", "access.ban", "alice", "ok"] and row.endswith("left")
    assert "note: 1 of 7 lines are not audit lines (skipped)" in result.stderr


def test_other_files_gzip_and_standard_input(home: Home, tmp_path: Path) -> None:
    plain = write_trail(tmp_path / "old.log")
    compressed = tmp_path / "older.log.gz"
    with gzip.open(compressed, "wb") as f:
        f.write(plain.read_bytes())
    records = audit(home, "--file", str(compressed), "--file", str(plain), "--user", "bob")
    assert len(records) == 2
    piped = run_cli([NOW, "audit", "--file", "-", "--user", "bob", "-o", "json"], home=home.root,
                    input=plain.read_text())  # fmt: skip
    assert piped.exit_code == 0 and len(piped.stdout.splitlines()) == 1


def test_bad_input_is_one_line_and_exit_1(home: Home, tmp_path: Path) -> None:
    missing = run_cli(["audit", "--file", str(tmp_path / "nope.log")], home=home.root)
    assert missing.exit_code == 1 and missing.stderr.startswith("error: audit trail")
    assert "does not exist" in missing.stderr
    bad_since = run_cli(["audit", "--since", "yesterday-ish"], home=home.root)
    assert bad_since.exit_code == 1 and "--since 'yesterday-ish'" in bad_since.stderr
