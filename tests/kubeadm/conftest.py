"""Fixtures for the kubeadm tests: one tree made by `authsvc init` per session, copied for tests that change it.

The tree is built for a cluster that exercises every SAN rule: a DNS control-plane endpoint,
an advertise address, extra SANs of both kinds and a node name that is not the default.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from authsvc.home.opened import Home, open_home
from authsvc.init.steps import initialize_home
from authsvc.settings import Settings
from authsvc.settings.cluster import ClusterSettings
from pki.clock import FixedClock
from tests.components.support import require_binary

# The advertise address is on loopback: /usr/bin/kubectl here is gcloud's dispatcher, which asks the
# server for its version before running, and a refused loopback connection costs nothing where an
# unroutable documentation address waits for a 3-second timeout.
CLUSTER = ClusterSettings(
    node_name="cp-1",
    advertise_address="127.0.0.2",
    control_plane_endpoint="k8s.example.test:6443",
    apiserver_cert_extra_sans=("10.0.0.5", "api.example.test"),
    server="https://k8s.example.test:6443",
)


@dataclass(frozen=True)
class Tree:
    """A home initialised by the real init steps, and the time it was made at."""

    root: Path
    now: dt.datetime

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    def cert(self, relative: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate((self.root / relative).read_bytes())

    def open(self, now: dt.datetime | None = None) -> Home:
        return open_home(self.root, clock=FixedClock(now or self.now), environ={})


def kubeconfig_cert(path: Path) -> x509.Certificate:
    config = yaml.safe_load(path.read_text())
    data = config["users"][0]["user"]["client-certificate-data"]
    return x509.load_pem_x509_certificate(base64.b64decode(data))


def checksums(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def iso(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="session")
def kubeadm_tree(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    """Made once: RSA-2048 key generation is most of its cost (~1 s for the 16 keys)."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    root = tmp_path_factory.mktemp("kubeadm") / "home"
    ctx = initialize_home(root, Settings(cluster=CLUSTER), clock=FixedClock(now), environ={})
    ctx.home.stores.engine.dispose()  # closes SQLite cleanly, so copies of the home are complete
    return Tree(root, now)


@pytest.fixture
def tree_copy(kubeadm_tree: Tree, tmp_path: Path) -> Tree:
    """A private copy of the session tree for tests that renew, chmod or break files."""
    root = tmp_path / "home"
    shutil.copytree(kubeadm_tree.root, root)
    return Tree(root, kubeadm_tree.now)


@pytest.fixture
def kubeadm_only(kubeadm_tree: Tree, tmp_path: Path) -> Iterator[Path]:
    """A PKI directory holding just kubeadm's files (no authsvc/ subdirectory of other components)."""
    target = tmp_path / "pki"
    shutil.copytree(kubeadm_tree.pki, target, ignore=shutil.ignore_patterns("authsvc"))
    yield target


@pytest.fixture(scope="session")
def openssl() -> Path:
    return require_binary("openssl")


@pytest.fixture(scope="session")
def kubectl_binary() -> Path:
    return require_binary("/usr/bin/kubectl")


def kubectl_view(kubectl: Path, kubeconfig: Path, tmp_home: Path) -> dict[str, Any]:
    """kubectl's own reading of a kubeconfig (`config view --raw -o json`), with a private $HOME."""
    result = subprocess.run(
        [str(kubectl), "--kubeconfig", str(kubeconfig), "config", "view", "--raw", "-o", "json"],
        capture_output=True,
        text=True,
        env={"HOME": str(tmp_home), "PATH": "/usr/bin:/bin"},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


@pytest.fixture(scope="session")
def kubeadm_etc_template(openssl: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """/etc/kubernetes of a kubeadm cluster made with a non-default endpoint, node name and cluster
    name (tests/kubeadm/kubeadm_shaped.py), written once: openssl makes its 15 RSA keys."""
    from tests.kubeadm.kubeadm_shaped import KubeadmShape, write_kubeadm_etc

    return write_kubeadm_etc(openssl, tmp_path_factory.mktemp("kubeadm-etc") / "kubernetes", KubeadmShape())


@pytest.fixture
def kubeadm_etc(kubeadm_etc_template: Path, tmp_path: Path) -> Path:
    """A private copy of that /etc/kubernetes (the tests adopt it, renew it in place, break it)."""
    target = tmp_path / "etc-kubernetes"
    shutil.copytree(kubeadm_etc_template, target)
    return target
