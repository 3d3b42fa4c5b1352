"""What `pki import` infers from a tree, as a pure function: every source, the order in which they
are trusted, and what cannot be inferred (a note instead of a guess)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from authsvc.adopt.cluster_config import go_duration, read_cluster_config
from authsvc.adopt.infer import infer_cluster
from authsvc.errors import InvalidInput
from pki.ca import CertificateAuthority
from pki.keys import KeyType
from pki.kubeadm.certlist import CA_SPECS, KUBEADM_CA, ClusterParams, build_tree, ca_alt_names
from pki.kubeadm.import_tree import KubeadmTree, TreeCert

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
BETA3 = "kubeadm.k8s.io/v1beta3"


def tree_for(params: ClusterParams) -> KubeadmTree:
    """kubeadm's leaves for `params`, from authsvc's builder (ECDSA: fast), as the import reads them."""
    cas = {
        s.base_name: CertificateAuthority.create_root(
            s.common_name, now=NOW, key_type=KeyType.EC_P256, profile=KUBEADM_CA, sans=ca_alt_names(s)
        )
        for s in CA_SPECS
    }
    certs = [TreeCert(n, n, KUBEADM_CA.name, ca.certificate, ca.key) for n, ca in cas.items()]
    for pair in build_tree(params, cas, now=NOW, key_type=KeyType.EC_P256):
        if not pair.name.endswith(".conf"):
            certs.append(TreeCert(pair.name, pair.ca, pair.profile.name, pair.certificate, pair.key))
    return KubeadmTree(Path("/etc/kubernetes/pki"), (), tuple(certs))


def test_a_service_cidr_the_certificate_cannot_tell_is_a_note_not_a_guess() -> None:
    params = ClusterParams(node_name="cp-3", advertise_address="10.1.0.3", service_cidr="10.112.0.0/12")
    inference = infer_cluster(tree_for(params), [], {})
    assert "service_cidr" not in inference.values
    (server_note, note) = inference.notes
    assert "first service IP is 10.112.0.1" in note and "set cluster.service_cidr" in note
    assert "no admin.conf" in server_note
    assert inference.value("node_name") == "cp-3" and inference.value("advertise_address") == "10.1.0.3"
    assert inference.value("apiserver_cert_extra_sans", ()) == (), "the service IP is not an extra SAN"
    assert inference.value("encryption_algorithm") == "ECDSA-P256"


def test_the_default_service_cidr_needs_no_note() -> None:
    inference = infer_cluster(tree_for(ClusterParams(node_name="cp-3")), [], {})
    assert not [n for n in inference.notes if "service_cidr" in n]


def test_without_etcd_or_kubeconfigs_the_apiserver_certificate_still_speaks() -> None:
    params = ClusterParams(node_name="cp-4", advertise_address="10.1.0.4", dns_domain="corp.example")
    tree = tree_for(params)
    no_etcd = KubeadmTree(tree.source, (), tuple(c for c in tree.certificates if not c.ca.startswith("etcd")))
    inference = infer_cluster(no_etcd, [], {})
    assert inference.values["advertise_address"].source == "apiserver.crt: second IP SAN"
    assert inference.value("dns_domain") == "corp.example"
    assert "node_name" not in inference.values  # only etcd's CN or kubelet.conf say it
    assert "cp-4" in inference.value("apiserver_cert_extra_sans"), "unexplained: kept as an extra SAN, not lost"


def test_the_kubeadm_configuration_wins(tmp_path: Path) -> None:
    config = tmp_path / "kubeadm.yaml"
    config.write_text(
        yaml.safe_dump_all(
            [
                {"apiVersion": BETA3, "kind": "InitConfiguration", "nodeRegistration": {"name": "cfg"}},
                {
                    "apiVersion": BETA3,
                    "kind": "ClusterConfiguration",
                    "networking": {"serviceSubnet": "10.112.0.0/12"},
                    "certificateValidityPeriod": "2160h0m0s",
                },
                {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration"},
            ]
        )
    )
    params = ClusterParams(node_name="cp-3", service_cidr="10.112.0.0/12")
    inference = infer_cluster(tree_for(params), [], read_cluster_config(config))
    assert inference.values["node_name"].value == "cfg"
    assert inference.values["node_name"].source == "kubeadm.yaml: InitConfiguration.nodeRegistration.name"
    assert inference.value("service_cidr") == "10.112.0.0/12"
    assert inference.value("certificate_validity_period") == dt.timedelta(days=90)
    assert not [n for n in inference.notes if "service_cidr" in n]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("kind: Config\n", "holds no kubeadm ClusterConfiguration"),
        ("a: [\n", "is not valid YAML"),
        (f"apiVersion: {BETA3}\nkind: ClusterConfiguration\ncertificateValidityPeriod: 1 year\n", "is not a duration"),
    ],
)
def test_a_configuration_file_that_is_not_one_is_named(tmp_path: Path, text: str, problem: str) -> None:
    config = tmp_path / "kubeadm.yaml"
    config.write_text(text)
    with pytest.raises(InvalidInput, match=problem):
        read_cluster_config(config)


def test_go_durations() -> None:
    assert go_duration("8760h0m0s", "x") == dt.timedelta(days=365)
    assert go_duration("90m", "x") == dt.timedelta(minutes=90)
    for bad in ("", "1d", "h", "-5h"):
        with pytest.raises(InvalidInput):
            go_duration(bad, "x")
