"""Fixtures for the kubeconfig tests: real kubectl, a loopback API-server stand-in, issuing helpers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from authsvc.home.opened import Home, open_home
from authsvc.init.steps import initialize_home
from authsvc.settings import Settings
from pki.clock import FixedClock
from tests.components.support import require_binary
from tests.kubeconfig.tls_server import VersionServer
from tests.login.login_server import serving_files as make_serving_files

VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Kubectl:
    binary: Path
    home_dir: Path

    def run(
        self, kubeconfig: Path, *args: str, env: dict[str, str] | None = None, plugin: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """kubectl with only this kubeconfig and a private $HOME (its cache).

        `authsvc` is on PATH only with `plugin`: gcloud's kubectl is a dispatcher that asks the
        server's version before every command, running a kubeconfig's exec plugin to do so
        (even for `config view`), which would log in where a test does not mean to.
        """
        search = [str(VENV_BIN)] if plugin else []
        environ = {"HOME": str(self.home_dir), "PATH": os.pathsep.join([*search, "/usr/bin", "/bin"]), **(env or {})}
        command = [str(self.binary), "--kubeconfig", str(kubeconfig), "--request-timeout=20s", *args]
        return subprocess.run(command, capture_output=True, text=True, env=environ, timeout=60, check=False)

    def view(self, kubeconfig: Path) -> dict[str, Any]:
        """`kubectl config view --raw -o json`: kubectl's own reading of the file."""
        result = self.run(kubeconfig, "config", "view", "--raw", "-o", "json")
        assert result.returncode == 0, result.stderr
        parsed: dict[str, Any] = json.loads(result.stdout)
        return parsed


@pytest.fixture(scope="session")
def template_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `authsvc init` per session: a full kubeadm tree costs seconds of RSA key generation."""
    home = initialize_home(tmp_path_factory.mktemp("template") / "home", Settings(), environ={}).home
    home.stores.engine.dispose()  # checkpoints SQLite's WAL into the database file before it is copied
    return home.root


@pytest.fixture
def home(template_home: Path, tmp_path: Path, clock: FixedClock) -> Home:
    """A private copy of the initialised template home (overrides the suite-wide fixture)."""
    root = shutil.copytree(template_home, tmp_path / "home")
    return open_home(root, clock=clock, environ={})


def reconfigure(home: Home, **sections: dict[str, Any]) -> Home:
    """The same home with some settings changed in its authsvc.yaml (e.g. server={"public_url": ...})."""
    data = home.settings.model_dump(mode="json")
    for name, values in sections.items():
        data[name].update(values)
    home.layout.config_path.write_text(yaml.safe_dump(data, sort_keys=False))
    return open_home(home.root, clock=home.clock, environ={})


@pytest.fixture
def kubectl(tmp_path: Path) -> Kubectl:
    home_dir = tmp_path / "kubectl-home"
    home_dir.mkdir()
    return Kubectl(require_binary("kubectl"), home_dir)


@pytest.fixture
def serving_files(home: Home, tmp_path: Path) -> tuple[Path, Path]:
    """A serving certificate for 127.0.0.1 from the cluster CA, as kube-apiserver would have."""
    return make_serving_files(home, tmp_path)


@pytest.fixture
def mtls_server(home: Home, serving_files: tuple[Path, Path]) -> Iterator[VersionServer]:
    """Requires a client certificate from the cluster CA (ssl.CERT_REQUIRED)."""
    with VersionServer(*serving_files, client_ca=home.layout.cert_path("ca")) as server:
        yield server


@pytest.fixture
def token_server(serving_files: tuple[Path, Path]) -> Iterator[VersionServer]:
    """Asks for no client certificate: the credential is the Authorization header."""
    with VersionServer(*serving_files, client_ca=None) as server:
        yield server
