"""`authsvc keys export-public` through the real entry point: a bundle, never an empty one."""

from __future__ import annotations

from pathlib import Path

from authsvc.home.opened import Home
from authsvc.init.steps import initialize_home, write_config_step
from authsvc.settings import Settings
from tests.conftest import run_cli


def home_without_keys(root: Path) -> Path:
    """A configured home that never got its signing key (`init` did not run to the end)."""
    initialize_home(root, Settings(), environ={}, steps=[write_config_step])
    return root


def test_export_public_prints_the_bundle(home: Home) -> None:
    result = run_cli(["keys", "export-public"], home=home.root)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (home.root / "pki" / "sa.pub").read_text()


def test_export_public_without_keys_fails_and_says_what_to_do(tmp_path: Path) -> None:
    result = run_cli(["keys", "export-public"], home=home_without_keys(tmp_path / "home"))
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == "error: no token signing keys to export: run `authsvc init` to create pki/sa.key\n"


def test_export_public_without_keys_writes_no_file(tmp_path: Path) -> None:
    out = tmp_path / "sa-public-keys.pem"
    result = run_cli(["keys", "export-public", "-o", str(out)], home=home_without_keys(tmp_path / "home"))
    assert result.exit_code == 1 and result.stderr.count("\n") == 1 and "authsvc init" in result.stderr
    assert not out.exists()
