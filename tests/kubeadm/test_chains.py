"""The chains of the generated tree, checked by openssl and by cryptography's RFC 5280 verifier.

etcd's leaves verify against etcd/ca, front-proxy-client against front-proxy-ca, the rest
against ca; each also fails against a CA that did not sign it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from tests.kubeadm.conftest import Tree, kubeconfig_cert

CHAINS = {
    "apiserver": "ca",
    "apiserver-kubelet-client": "ca",
    "front-proxy-client": "front-proxy-ca",
    "etcd/server": "etcd/ca",
    "etcd/peer": "etcd/ca",
    "etcd/healthcheck-client": "etcd/ca",
    "apiserver-etcd-client": "etcd/ca",
}
WRONG_CA = {"ca": "front-proxy-ca", "front-proxy-ca": "ca", "etcd/ca": "ca"}
PURPOSE = {"apiserver": "sslserver", "etcd/server": "sslserver", "etcd/peer": "sslclient"}


def openssl_verify(openssl: Path, ca: Path, cert: Path, purpose: str) -> subprocess.CompletedProcess[str]:
    command = [str(openssl), "verify", "-x509_strict", "-purpose", purpose, "-CAfile", str(ca), str(cert)]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


@pytest.mark.parametrize(("leaf", "ca"), sorted(CHAINS.items()))
def test_openssl_verifies_each_chain(kubeadm_tree: Tree, openssl: Path, leaf: str, ca: str) -> None:
    cert, purpose = kubeadm_tree.pki / f"{leaf}.crt", PURPOSE.get(leaf, "sslclient")
    ok = openssl_verify(openssl, kubeadm_tree.pki / f"{ca}.crt", cert, purpose)
    assert ok.returncode == 0 and ok.stdout.strip().endswith("OK"), ok.stdout + ok.stderr
    wrong = openssl_verify(openssl, kubeadm_tree.pki / f"{WRONG_CA[ca]}.crt", cert, purpose)
    assert wrong.returncode != 0
    assert "unable to get local issuer certificate" in wrong.stdout + wrong.stderr


@pytest.mark.parametrize("name", ["admin.conf", "super-admin.conf", "kubelet.conf", "scheduler.conf"])
def test_openssl_verifies_kubeconfig_client_certs(kubeadm_tree: Tree, openssl: Path, tmp_path: Path, name: str) -> None:
    pem = tmp_path / "client.crt"
    pem.write_bytes(kubeconfig_cert(kubeadm_tree.root / name).public_bytes(Encoding.PEM))
    assert openssl_verify(openssl, kubeadm_tree.pki / "ca.crt", pem, "sslclient").returncode == 0
    assert openssl_verify(openssl, kubeadm_tree.pki / "etcd/ca.crt", pem, "sslclient").returncode != 0


def _verifier(tree: Tree, ca: str) -> PolicyBuilder:
    moment = tree.now + dt.timedelta(minutes=1)
    return PolicyBuilder().store(Store([tree.cert(f"pki/{ca}.crt")])).time(moment)


@pytest.mark.parametrize(
    "name",
    [
        x509.DNSName("kubernetes.default.svc"),
        x509.DNSName("k8s.example.test"),
        x509.IPAddress(ipaddress.ip_address("10.96.0.1")),
    ],
)
def test_cryptography_verifies_apiserver_for_its_names(kubeadm_tree: Tree, name: x509.GeneralName) -> None:
    verifier = _verifier(kubeadm_tree, "ca").build_server_verifier(name)  # type: ignore[arg-type]
    chain = verifier.verify(kubeadm_tree.cert("pki/apiserver.crt"), [])
    assert chain[-1] == kubeadm_tree.cert("pki/ca.crt")


def test_cryptography_refuses_apiserver_for_another_name(kubeadm_tree: Tree) -> None:
    verifier = _verifier(kubeadm_tree, "ca").build_server_verifier(x509.DNSName("evil.example"))
    with pytest.raises(VerificationError):
        verifier.verify(kubeadm_tree.cert("pki/apiserver.crt"), [])


def test_front_proxy_client_signature_is_front_proxy_cas_only(kubeadm_tree: Tree) -> None:
    """cryptography's client verifier wants a SAN, which kubeadm's client certificates do not carry:
    check the signature itself (openssl checks the whole chain above)."""
    leaf = kubeadm_tree.cert("pki/front-proxy-client.crt")
    leaf.verify_directly_issued_by(kubeadm_tree.cert("pki/front-proxy-ca.crt"))
    with pytest.raises(ValueError, match="does not match certificate issuer"):
        leaf.verify_directly_issued_by(kubeadm_tree.cert("pki/ca.crt"))
