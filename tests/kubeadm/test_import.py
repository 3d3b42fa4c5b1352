"""`authsvc pki import`: a tree made with the openssl command line in kubeadm's shape is adopted;
broken variants are refused in one line, and the source directory is never changed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.kubeadm.conftest import Tree, checksums
from tests.kubeadm.kubeadm_shaped import CAS, make_ca, make_key, make_leaf, ssl

# base name: (CA, subject, extendedKeyUsage, subjectAltName or "")
LEAVES = {
    "apiserver": (
        "ca",
        "/CN=kube-apiserver",
        "serverAuth",
        "DNS:node-1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,"
        "DNS:kubernetes.default.svc.cluster.local,IP:10.96.0.1,IP:192.0.2.20",
    ),
    "apiserver-kubelet-client": ("ca", "/O=kubeadm:cluster-admins/CN=kube-apiserver-kubelet-client", "clientAuth", ""),
    "front-proxy-client": ("front-proxy-ca", "/CN=front-proxy-client", "clientAuth", ""),
    "etcd/server": ("etcd/ca", "/CN=node-1", "serverAuth,clientAuth", "DNS:node-1,DNS:localhost,IP:127.0.0.1"),
    "etcd/peer": ("etcd/ca", "/CN=node-1", "serverAuth,clientAuth", "DNS:node-1,DNS:localhost,IP:127.0.0.1"),
    "etcd/healthcheck-client": ("etcd/ca", "/CN=kube-etcd-healthcheck-client", "clientAuth", ""),
    "apiserver-etcd-client": ("etcd/ca", "/CN=kube-apiserver-etcd-client", "clientAuth", ""),
}


@pytest.fixture(scope="module")
def openssl_tree(openssl: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """/etc/kubernetes/pki as kubeadm leaves it, made by openssl (PKCS#1 keys, kubeadm's subjects)."""
    pki = tmp_path_factory.mktemp("openssl") / "pki"
    (pki / "etcd").mkdir(parents=True)
    for base, cn in CAS.items():
        make_ca(openssl, pki, base, cn)
    for base, (ca, subject, eku, san) in LEAVES.items():
        make_leaf(openssl, pki, base, ca, subject, eku, san)
    make_key(openssl, pki, "sa")
    ssl(openssl, "rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)
    for cert in pki.rglob("*.crt"):
        cert.chmod(0o644)
    return pki


@pytest.fixture
def source(openssl_tree: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "etc-kubernetes-pki"
    shutil.copytree(openssl_tree, copy)
    return copy


def test_openssl_tree_imports(source: Path, tmp_path: Path) -> None:
    before = checksums(source)
    home = tmp_path / "home"
    result = run_cli(["pki", "import", str(source)], home=home)
    assert result.exit_code == 0, result.stderr
    assert "imported 10 certificates" in result.stdout
    assert checksums(source) == before, "the source directory must not change"
    for relative, digest in before.items():
        assert checksums(home / "pki")[relative] == digest, relative  # copied byte for byte
        mode = (home / "pki" / relative).stat().st_mode & 0o777
        assert mode == (0o600 if relative.endswith(".key") else 0o644), relative
    listed = json.loads(run_cli(["certs", "list", "-o", "json"], home=home).stdout)
    names = {c["name"] for c in listed}
    assert {"ca", "front-proxy-ca", "etcd/ca", "apiserver", "etcd/server", "apiserver-etcd-client"} <= names


def test_imported_tree_is_checked_renewed_and_audited(source: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert run_cli(["pki", "import", str(source)], home=home).exit_code == 0
    assert run_cli(["pki", "import", str(source)], home=home).exit_code == 0  # the same files again: a no-op
    expiring = json.loads(run_cli(["certs", "check-expiration", "-o", "json"], home=home).stdout)
    assert {c["name"] for c in expiring["certificates"]} >= {"apiserver", "etcd-server", "front-proxy-client"}
    renewed = run_cli(["certs", "renew", "etcd-server"], home=home)
    assert renewed.exit_code == 0, renewed.stderr
    assert run_cli(["pki", "check", str(source)], home=home).exit_code == 0
    # after the renewal the home's etcd/server.crt is newer than the source's: importing it would go back
    again = run_cli(["pki", "import", str(source)], home=home)
    assert again.exit_code == 1 and "etcd/server.crt already exists with other content" in again.stderr


def _mismatched_key(pki: Path) -> None:
    shutil.copy(pki / "front-proxy-client.key", pki / "apiserver.key")


def _missing_key(pki: Path) -> None:
    (pki / "etcd" / "server.key").unlink()


def _signed_by_another_ca(pki: Path) -> None:
    # front-proxy-client re-issued by the cluster CA instead of front-proxy-ca
    for name in ("front-proxy-client.crt", "front-proxy-client.key"):
        shutil.copy(pki / name.replace("front-proxy-client", "apiserver-kubelet-client"), pki / name)


BROKEN = {
    "mismatched key": (_mismatched_key, "apiserver.key does not match apiserver.crt"),
    "missing key": (_missing_key, "etcd/server.key is missing"),
    "not signed by its CA": (_signed_by_another_ca, "front-proxy-client.crt is not signed by front-proxy-ca.crt"),
}


@pytest.mark.parametrize("variant", sorted(BROKEN))
def test_broken_tree_refused_in_one_line_and_source_unchanged(source: Path, tmp_path: Path, variant: str) -> None:
    breaker, message = BROKEN[variant]
    breaker(source)
    before = checksums(source)
    home = tmp_path / "home"
    result = run_cli(["pki", "import", str(source)], home=home)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert checksums(source) == before
    assert not (home / "pki" / "ca.crt").exists(), "nothing is copied when validation fails"


def test_import_does_not_overwrite_another_tree_without_force(source: Path, tree_copy: Tree) -> None:
    refused = run_cli(["pki", "import", str(source)], home=tree_copy.root)
    assert refused.exit_code == 1 and "already exists with other content" in refused.stderr
    assert "--force" in refused.stderr
    old_ca = (tree_copy.pki / "ca.crt").read_bytes()
    forced = run_cli(["pki", "import", "--force", str(source)], home=tree_copy.root)
    assert forced.exit_code == 0, forced.stderr
    assert (tree_copy.pki / "ca.crt").read_bytes() == (source / "ca.crt").read_bytes()
    (backup,) = (tree_copy.root / "backups").iterdir()
    assert (backup / "pki" / "ca.crt").read_bytes() == old_ca


def test_ca_without_its_key_imports_as_externally_managed(source: Path, tmp_path: Path) -> None:
    """kubeadm's external CA mode: etcd/ca.key kept elsewhere; its leaves still verify against etcd/ca.crt."""
    (source / "etcd" / "ca.key").unlink()
    home = tmp_path / "home"
    result = run_cli(["pki", "import", str(source)], home=home)
    assert result.exit_code == 0, result.stderr
    assert not (home / "pki" / "etcd" / "ca.key").exists()
    table = run_cli(["certs", "check-expiration"], home=home).stdout
    etcd_ca = next(line for line in table.splitlines() if line.startswith("etcd-ca "))
    assert etcd_ca.split()[-1] == "yes"
    refused = run_cli(["certs", "renew", "etcd-server"], home=home)
    assert refused.exit_code == 1 and "etcd/ca.key" in refused.stderr


def test_cluster_ca_key_is_required(source: Path, tmp_path: Path) -> None:
    (source / "ca.key").unlink()
    result = run_cli(["pki", "import", str(source)], home=tmp_path / "home")
    assert result.exit_code == 1 and "ca.key is missing" in result.stderr
