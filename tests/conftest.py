"""Fixtures shared by every test: an injected clock, an initialised home, the CLI in-process."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from authsvc.home.opened import Home, open_home
from authsvc.init.steps import initialize_home
from authsvc.settings import Settings
from pki.clock import FixedClock

# Fixtures that several directories ask for, defined once for the whole session. A session
# fixture imported into a conftest or test module is a new fixture there, set up again: the
# real servers (PostgreSQL, slapd, the control plane) and the login home would start once
# per importing module.
pytest_plugins = [
    "tests.db.fixtures",
    "tests.e2e.fixtures",
    "tests.ldap.fixtures",
    "tests.login.fixtures",
    "tests.oidc.fixtures",
]


@pytest.fixture
def clock() -> FixedClock:
    """Starts at the real current second, so openssl and real TLS peers agree with it."""
    return FixedClock(dt.datetime.now(dt.UTC).replace(microsecond=0))


@pytest.fixture(scope="session")
def home_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One fully initialised home per session: `init` makes ~20 keys (RSA for kubeadm parity)."""
    root = tmp_path_factory.mktemp("template") / "home"
    initialize_home(root, Settings(), environ={})
    return root


@pytest.fixture
def home(tmp_path: Path, clock: FixedClock, home_template: Path) -> Home:
    """A private copy of the initialised template home, using the injected clock."""
    root = tmp_path / "home"
    shutil.copytree(home_template, root)
    return open_home(root, clock=clock, environ={})


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


def run_cli(
    args: Sequence[str], *, home: Path | None = None, input: str | None = None, env: dict[str, str] | None = None
) -> CliResult:
    """Run `authsvc ARGS` in-process through the real entry point (error mapping included)."""
    from authsvc.cli import main

    argv = ([f"--home={home}"] if home is not None else []) + list(args)
    runner = CliRunner()
    code = 0
    # A KUBECONFIG (or a pod's environment) in the test runner's environment would connect
    # commands to some cluster: tests say which cluster they mean (--kubeconfig, or env=).
    isolated: dict[str, str | None] = {"KUBECONFIG": None, "KUBERNETES_SERVICE_HOST": None, **(env or {})}
    with runner.isolation(input=input, env=isolated) as streams:
        try:
            main(argv)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        stdout, stderr = streams[0].getvalue(), streams[1].getvalue()
    return CliResult(code, stdout.decode(), stderr.decode())


@pytest.fixture
def cli() -> type[CliResult]:
    """`cli(args, home=...)` — see run_cli."""
    return run_cli  # type: ignore[return-value]
