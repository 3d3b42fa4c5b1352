from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli


def test_init_then_create_and_list(tmp_path: Path) -> None:
    home = tmp_path / "h"
    assert run_cli(["init"], home=home).exit_code == 0
    result = run_cli(["certs", "create", "alice", "-g", "dev"], home=home)
    assert result.exit_code == 0, result.stderr
    listed = run_cli(["certs", "list", "-o", "json"], home=home)
    assert '"commonName": "alice"' in listed.stdout


def test_privileged_group_refused_in_one_line(tmp_path: Path) -> None:
    home = tmp_path / "h"
    run_cli(["init"], home=home)
    result = run_cli(["certs", "create", "mallory", "-g", "system:masters"], home=home)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "system:masters" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_usage_exits_2(tmp_path: Path) -> None:
    assert run_cli(["certs", "create"], home=tmp_path / "h").exit_code == 2


def test_a_bug_is_an_internal_error_not_a_user_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ValueError from a bug (not a user error of authsvc or pki) says "internal error" and
    nothing of its message; --debug shows the traceback. The twin: a user error says what it is."""
    home = tmp_path / "h"
    run_cli(["init"], home=home)

    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("secret-looking internals")

    monkeypatch.setattr("authsvc.kubeconfig.issuer.KubeconfigIssuer.issue", broken)
    result = run_cli(["issue", "alice", "-o", str(tmp_path / "a.conf")], home=home)
    assert (result.exit_code, result.stderr) == (1, "error: internal error (run with --debug)\n")
    with pytest.raises(ValueError, match="secret-looking internals"):  # --debug: the traceback
        run_cli(["--debug", "issue", "alice", "-o", str(tmp_path / "a.conf")], home=home)
    monkeypatch.undo()
    user_error = run_cli(["issue", "alice", "-g", "system:masters", "-o", str(tmp_path / "a.conf")], home=home)
    assert user_error.exit_code == 1 and user_error.stderr.startswith("error: ") and "internal" not in user_error.stderr
