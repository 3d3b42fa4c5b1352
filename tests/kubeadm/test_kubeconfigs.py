"""The kubeconfigs `authsvc init` writes, read by real kubectl and by the kubernetes Python client."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from kubernetes import client, config  # type: ignore[import-untyped]
from kubernetes.config.config_exception import ConfigException  # type: ignore[import-untyped]

from pki.keys import keys_match
from pki.names import subject_user
from tests.kubeadm.conftest import Tree, kubectl_view

# file: (user = client CN, groups = O, server) as kubeadm v1.33's getKubeConfigSpecsBase makes them
# (kubelet.conf on the local endpoint: ControlPlaneKubeletLocalMode, on by default since v1.33).
CONTROL_PLANE, LOCAL = "https://k8s.example.test:6443", "https://127.0.0.2:6443"
KUBECONFIGS = {
    "admin.conf": ("kubernetes-admin", ("kubeadm:cluster-admins",), CONTROL_PLANE),
    "super-admin.conf": ("kubernetes-super-admin", ("system:masters",), CONTROL_PLANE),
    "kubelet.conf": ("system:node:cp-1", ("system:nodes",), LOCAL),
    "controller-manager.conf": ("system:kube-controller-manager", (), LOCAL),
    "scheduler.conf": ("system:kube-scheduler", (), LOCAL),
}


@pytest.mark.parametrize("name", sorted(KUBECONFIGS))
def test_kubectl_reads_each_kubeconfig(kubeadm_tree: Tree, kubectl_binary: Path, tmp_path: Path, name: str) -> None:
    user, groups, server = KUBECONFIGS[name]
    view = kubectl_view(kubectl_binary, kubeadm_tree.root / name, tmp_path)
    assert view["current-context"] == f"{user}@kubernetes"
    (cluster,) = view["clusters"]
    assert cluster["name"] == "kubernetes" and cluster["cluster"]["server"] == server
    ca_pem = base64.b64decode(cluster["cluster"]["certificate-authority-data"])
    assert ca_pem == (kubeadm_tree.pki / "ca.crt").read_bytes()
    (entry,) = view["users"]
    assert entry["name"] == user
    cert = x509.load_pem_x509_certificate(base64.b64decode(entry["user"]["client-certificate-data"]))
    key = load_pem_private_key(base64.b64decode(entry["user"]["client-key-data"]), None)
    assert subject_user(cert.subject) == (user, groups)
    assert keys_match(key, cert.public_key())  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(KUBECONFIGS))
def test_kubernetes_client_loads_each_kubeconfig(kubeadm_tree: Tree, name: str) -> None:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeadm_tree.root / name), client_configuration=configuration)
    assert configuration.host == KUBECONFIGS[name][2]
    assert Path(configuration.cert_file).read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    assert Path(configuration.ssl_ca_cert).read_bytes() == (kubeadm_tree.pki / "ca.crt").read_bytes()


def test_admin_is_in_kubeadm_cluster_admins_not_system_masters(kubeadm_tree: Tree) -> None:
    """kubeadm >= 1.29: admin.conf's group is bound to cluster-admin by RBAC, so it can be revoked;
    only super-admin.conf is in system:masters, which bypasses RBAC."""
    admin = yaml.safe_load((kubeadm_tree.root / "admin.conf").read_text())
    cert = x509.load_pem_x509_certificate(base64.b64decode(admin["users"][0]["user"]["client-certificate-data"]))
    assert subject_user(cert.subject) == ("kubernetes-admin", ("kubeadm:cluster-admins",))
    assert "system:masters" not in subject_user(cert.subject)[1]


def test_a_broken_kubeconfig_is_refused_by_both_readers(
    kubeadm_tree: Tree, kubectl_binary: Path, tmp_path: Path
) -> None:
    """The failing twin: the same readers refuse a kubeconfig whose current-context does not exist."""
    broken = yaml.safe_load((kubeadm_tree.root / "admin.conf").read_text())
    broken["current-context"] = "nowhere"
    path = tmp_path / "broken.conf"
    path.write_text(yaml.safe_dump(broken))
    with pytest.raises(ConfigException):
        config.load_kube_config(config_file=str(path), client_configuration=client.Configuration())
    result = subprocess.run(
        [str(kubectl_binary), "--kubeconfig", str(path), "config", "view", "--minify", "--raw", "-o", "json"],
        capture_output=True,
        text=True,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        timeout=60,
        check=False,
    )
    assert result.returncode != 0 and "nowhere" in result.stderr
