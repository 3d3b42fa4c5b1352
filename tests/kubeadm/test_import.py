"""`authsvc pki import`: a tree made with the openssl command line in kubeadm's shape is adopted;
broken variants are refused in one line, and the source directory is never changed."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.kubeadm.conftest import Tree, checksums

CA_EXT = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,digitalSignature,keyEncipherment,keyCertSign\n"
LEAF_KU = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
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
CAS = {"ca": "kubernetes", "front-proxy-ca": "front-proxy-ca", "etcd/ca": "etcd-ca"}


def ssl(openssl: Path, *args: str | Path, cwd: Path) -> None:
    result = subprocess.run([str(openssl), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def make_key(openssl: Path, pki: Path, base: str) -> None:
    # kubeadm writes PKCS#1 ("RSA PRIVATE KEY"); -traditional makes openssl 3 do the same.
    ssl(openssl, "genrsa", "-traditional", "-out", f"{base}.key", "2048", cwd=pki)
    (pki / f"{base}.key").chmod(0o600)


def make_ca(openssl: Path, pki: Path, base: str, cn: str) -> None:
    make_key(openssl, pki, base)
    ext = pki / "ca.ext"
    ext.write_text(CA_EXT + f"subjectAltName=DNS:{cn}\n")
    request = ["req", "-x509", "-new", "-key", f"{base}.key", "-subj", f"/CN={cn}", "-days", "3650", "-sha256"]
    ssl(openssl, *request, "-out", f"{base}.crt", "-extensions", "v3_ca", "-config", req_config(pki, ext), cwd=pki)
    ext.unlink()


def req_config(pki: Path, ext: Path) -> Path:
    config = pki / "req.cnf"
    config.write_text("[req]\ndistinguished_name=dn\n[dn]\n[v3_ca]\n" + ext.read_text())
    return config


def make_leaf(openssl: Path, pki: Path, base: str, ca: str, subject: str, eku: str, san: str) -> None:
    make_key(openssl, pki, base)
    ext = pki / "leaf.ext"
    ext.write_text(LEAF_KU + f"extendedKeyUsage={eku}\n" + (f"subjectAltName={san}\n" if san else ""))
    ssl(openssl, "req", "-new", "-key", f"{base}.key", "-subj", subject, "-out", "leaf.csr", cwd=pki)
    signing = ["x509", "-req", "-in", "leaf.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-days", "365"]
    serial = f"0x{secrets.token_hex(8)}"
    ssl(openssl, *signing, "-set_serial", serial, "-sha256", "-extfile", ext, "-out", f"{base}.crt", cwd=pki)
    for leftover in ("leaf.csr", "leaf.ext"):
        (pki / leftover).unlink()


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
    (pki / "req.cnf").unlink()
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
