from __future__ import annotations

from pathlib import Path

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
