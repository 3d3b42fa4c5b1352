"""Every certificate `authsvc init` makes, field by field against kubeadm's values.

The table below is written out by hand from kubeadm v1.33's source (certlist.go,
constants.go, kubeconfig.go, pki_helpers.go) for the cluster in conftest.CLUSTER; it does not
use pki/kubeadm/certlist.py, so a wrong entry there cannot make these tests agree with it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, SignatureAlgorithmOID

from pki.ca import CertificateAuthority
from pki.keys import KeyType
from pki.kubeadm.certlist import CA_SPECS, KUBEADM_CA, ClusterParams, build_tree, ca_alt_names
from tests.kubeadm.conftest import Tree, kubeconfig_cert

SERVER_AUTH, CLIENT_AUTH = ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH
YEAR, TEN_YEARS, BACKDATE = dt.timedelta(days=365), dt.timedelta(days=3650), dt.timedelta(minutes=5)
# pkiutil.NewSignedCert: KeyUsageKeyEncipherment | KeyUsageDigitalSignature for every leaf.
LEAF_USAGE = frozenset({"digital_signature", "key_encipherment"})
# certutil.NewSelfSignedCACert: the same plus KeyUsageCertSign. authsvc adds cRLSign (it signs
# CRLs with these CAs, and verifiers that check CRLs require it): the one deliberate difference.
CA_USAGE = frozenset({"digital_signature", "key_encipherment", "key_cert_sign"})
AUTHSVC_CA_ADDITIONS = frozenset({"crl_sign"})


@dataclass(frozen=True)
class Expected:
    issuer: str
    cn: str
    orgs: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()
    eku: tuple[x509.ObjectIdentifier, ...] = ()
    is_ca: bool = False
    lifetime: dt.timedelta = YEAR


APISERVER_DNS = (  # RemoveDuplicateAltNames sorts the DNS names
    "api.example.test",
    "cp-1",
    "k8s.example.test",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
ETCD_DNS, ETCD_IPS = ("cp-1", "localhost"), ("127.0.0.2", "127.0.0.1", "::1")

KUBEADM = {
    "pki/ca.crt": Expected("kubernetes", "kubernetes", dns=("kubernetes",), is_ca=True, lifetime=TEN_YEARS),
    "pki/front-proxy-ca.crt": Expected(
        "front-proxy-ca", "front-proxy-ca", dns=("front-proxy-ca",), is_ca=True, lifetime=TEN_YEARS
    ),
    "pki/etcd/ca.crt": Expected("etcd-ca", "etcd-ca", dns=("etcd-ca",), is_ca=True, lifetime=TEN_YEARS),
    "pki/apiserver.crt": Expected(
        "kubernetes",
        "kube-apiserver",
        dns=APISERVER_DNS,
        ips=("10.96.0.1", "127.0.0.2", "10.0.0.5"),
        eku=(SERVER_AUTH,),
    ),
    "pki/apiserver-kubelet-client.crt": Expected(
        "kubernetes", "kube-apiserver-kubelet-client", orgs=("kubeadm:cluster-admins",), eku=(CLIENT_AUTH,)
    ),
    "pki/front-proxy-client.crt": Expected("front-proxy-ca", "front-proxy-client", eku=(CLIENT_AUTH,)),
    "pki/etcd/server.crt": Expected("etcd-ca", "cp-1", dns=ETCD_DNS, ips=ETCD_IPS, eku=(SERVER_AUTH, CLIENT_AUTH)),
    "pki/etcd/peer.crt": Expected("etcd-ca", "cp-1", dns=ETCD_DNS, ips=ETCD_IPS, eku=(SERVER_AUTH, CLIENT_AUTH)),
    "pki/etcd/healthcheck-client.crt": Expected("etcd-ca", "kube-etcd-healthcheck-client", eku=(CLIENT_AUTH,)),
    "pki/apiserver-etcd-client.crt": Expected("etcd-ca", "kube-apiserver-etcd-client", eku=(CLIENT_AUTH,)),
    "admin.conf": Expected("kubernetes", "kubernetes-admin", orgs=("kubeadm:cluster-admins",), eku=(CLIENT_AUTH,)),
    "super-admin.conf": Expected("kubernetes", "kubernetes-super-admin", orgs=("system:masters",), eku=(CLIENT_AUTH,)),
    "kubelet.conf": Expected("kubernetes", "system:node:cp-1", orgs=("system:nodes",), eku=(CLIENT_AUTH,)),
    "controller-manager.conf": Expected("kubernetes", "system:kube-controller-manager", eku=(CLIENT_AUTH,)),
    "scheduler.conf": Expected("kubernetes", "system:kube-scheduler", eku=(CLIENT_AUTH,)),
}


def load(tree: Tree, name: str) -> x509.Certificate:
    return kubeconfig_cert(tree.root / name) if name.endswith(".conf") else tree.cert(name)


def key_usages(cert: x509.Certificate) -> frozenset[str]:
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement")
    names += ("key_cert_sign", "crl_sign")
    return frozenset(n for n in names if getattr(usage.value, n))


def sans(cert: x509.Certificate) -> tuple[tuple[str, ...], tuple[str, ...]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return (), ()
    return tuple(san.get_values_for_type(x509.DNSName)), tuple(str(i) for i in san.get_values_for_type(x509.IPAddress))


def ekus(cert: x509.Certificate) -> tuple[x509.ObjectIdentifier, ...]:
    try:
        return tuple(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return ()


@pytest.mark.parametrize("name", sorted(KUBEADM))
def test_certificate_matches_kubeadm(kubeadm_tree: Tree, name: str) -> None:
    cert, want = load(kubeadm_tree, name), KUBEADM[name]
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    orgs = tuple(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))
    assert [str(a.value) for a in cns] == [want.cn]
    assert orgs == want.orgs
    assert len(cert.subject) == 1 + len(want.orgs), "kubeadm's subjects hold only O and CN"
    assert cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == want.issuer
    assert sans(cert) == (want.dns, want.ips)
    assert ekus(cert) == want.eku
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca is want.is_ca
    assert constraints.value.path_length is None  # kubeadm sets no pathlen
    if want.is_ca:
        assert key_usages(cert) == CA_USAGE | AUTHSVC_CA_ADDITIONS
    else:
        assert key_usages(cert) == LEAF_USAGE
    # kubeadm: notBefore = start - 5 min (CertificateBackdate), notAfter = start + validity period.
    assert cert.not_valid_before_utc == kubeadm_tree.now - BACKDATE
    assert cert.not_valid_after_utc == kubeadm_tree.now + want.lifetime
    public_key = cert.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size == 2048  # kubeadm's RSA-2048
    assert cert.signature_algorithm_oid == SignatureAlgorithmOID.RSA_WITH_SHA256


def test_every_generated_certificate_is_in_the_table(kubeadm_tree: Tree) -> None:
    """Nothing kubeadm-shaped is made that the table above does not describe."""
    made = {p.relative_to(kubeadm_tree.root).as_posix() for p in kubeadm_tree.pki.rglob("*.crt")}
    made = {m for m in made if not m.startswith("pki/authsvc/")}  # authsvc's own webhook files
    made |= {p.name for p in kubeadm_tree.root.glob("*.conf")}
    assert made == set(KUBEADM)


def test_every_certificate_is_recorded_by_name_for_renewal(kubeadm_tree: Tree) -> None:
    home = kubeadm_tree.open()
    records = {r.name: r for r in home.stores.inventory.certificates()}
    for name in ("apiserver", "etcd/server", "etcd/healthcheck-client", "admin.conf", "kubelet.conf"):
        assert records[name].auto_renew, name
    assert records["etcd/server"].ca_name == "etcd/ca"
    assert records["front-proxy-client"].ca_name == "front-proxy-ca"
    assert not records["ca"].auto_renew  # CAs are rotated, not renewed
    home.stores.engine.dispose()


def test_files_have_kubeadm_names_and_modes(kubeadm_tree: Tree) -> None:
    for name in KUBEADM:
        if name.endswith(".crt"):
            assert (kubeadm_tree.root / name).stat().st_mode & 0o777 == 0o644
            assert (kubeadm_tree.root / name.replace(".crt", ".key")).stat().st_mode & 0o777 == 0o600
        else:
            assert (kubeadm_tree.root / name).stat().st_mode & 0o777 == 0o600  # kubeconfigs carry keys


@pytest.mark.parametrize(
    ("algorithm", "key_class", "size"),
    [(KeyType.EC_P256, ec.EllipticCurvePublicKey, 256), (KeyType.EC_P384, ec.EllipticCurvePublicKey, 384)],
)
def test_encryption_algorithm_sets_every_key(algorithm: KeyType, key_class: type, size: int) -> None:
    now = dt.datetime.now(dt.UTC)
    cas = {
        s.base_name: CertificateAuthority.create_root(
            s.common_name, now=now, key_type=algorithm, profile=KUBEADM_CA, sans=ca_alt_names(s)
        )
        for s in CA_SPECS
    }
    for pair in build_tree(ClusterParams(), cas, now=now, key_type=algorithm):
        key = pair.certificate.public_key()
        assert isinstance(key, key_class) and key.key_size == size, pair.name


def test_default_cluster_apiserver_sans() -> None:
    """The defaults kubeadm documents: service IP 10.96.0.1 and the kubernetes Service names."""
    now = dt.datetime.now(dt.UTC)
    ca = CertificateAuthority.create_root("kubernetes", now=now, profile=KUBEADM_CA)
    (pair,) = [
        p for p in build_tree(ClusterParams(), {"ca": ca}, now=now, key_type=KeyType.EC_P256) if p.name == "apiserver"
    ]
    dns, ips = sans(pair.certificate)
    assert "kubernetes.default.svc.cluster.local" in dns and ips[:2] == ("10.96.0.1", "127.0.0.1")
    assert ipaddress.ip_address(ips[0]) in ipaddress.ip_network("10.96.0.0/12")
