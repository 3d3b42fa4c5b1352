"""Kubernetes' signers' rules and authsvc's policy on certificates.k8s.io requests, in-process.

Each refusal is a parametrized row with the reason the signer writes into the Failed condition;
every rule has its accepted twin (the same request with the one value fixed).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pki.ca import CertificateAuthority
from pki.clock import FixedClock
from pki.csr import build_csr, csr_pem
from pki.csr_signers import (
    KUBE_APISERVER_CLIENT,
    KUBE_APISERVER_CLIENT_KUBELET,
    KUBE_APISERVER_CLIENT_RULES,
    KUBELET_CLIENT_RULES,
    KUBELET_SERVING,
    KUBELET_SERVING_RULES,
    MIN_LIFETIME,
    CsrRefused,
    KubernetesCSR,
    Reason,
    SignerRules,
    custom_rules,
    lifetime,
    review,
)
from pki.db import create_schema, make_engine
from pki.inventory import Inventory
from pki.issuance import CertificateIssuer
from pki.keys import KeyType, PrivateKey, generate_private_key
from pki.names import SubjectAltNames, user_subject
from pki.policy import SigningPolicy
from pki.profiles import KUBELET_CLIENT, SERVER

POLICY = SigningPolicy(allowed_dns_sans=("*.svc",), allowed_ip_sans=("127.0.0.0/8",))
TTL = dt.timedelta(days=1)
SERVING = KUBELET_SERVING_RULES.with_sans(("*",), ("0.0.0.0/0", "::/0"), ("kubernetes.default.svc",))
CLIENT_USAGES = ("digital signature", "key encipherment", "client auth")
SERVING_USAGES = ("digital signature", "key encipherment", "server auth")


def request(
    key: PrivateKey,
    user: str,
    groups: tuple[str, ...] = (),
    sans: tuple[str, ...] = (),
    *,
    extensions: tuple[tuple[x509.ExtensionType, bool], ...] = (),
) -> bytes:
    builder = x509.CertificateSigningRequestBuilder().subject_name(user_subject(user, groups))
    if sans:
        builder = builder.add_extension(SubjectAltNames.parse(sans).as_extension(), critical=False)
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(key, hashes.SHA256()).public_bytes(Encoding.PEM)  # type: ignore[arg-type]


def csr(
    pem: bytes, signer: str = KUBE_APISERVER_CLIENT, usages: tuple[str, ...] = CLIENT_USAGES, username: str = "admin"
) -> KubernetesCSR:
    return KubernetesCSR(pem, signer, usages, username, ("system:authenticated",))


def refused(rules: SignerRules, kube_csr: KubernetesCSR) -> CsrRefused:
    with pytest.raises(CsrRefused) as caught:
        review(rules, kube_csr, POLICY, TTL)
    return caught.value


@pytest.fixture(scope="module")
def key() -> PrivateKey:
    return generate_private_key(KeyType.EC_P256)


def tampered(pem: bytes) -> bytes:
    """The same request with one byte of its subject changed: its signature no longer verifies."""
    der = x509.load_pem_x509_csr(pem).public_bytes(Encoding.DER)
    index = der.index(b"alice")
    bad = der[:index] + b"alicf" + der[index + 5 :]
    return x509.load_der_x509_csr(bad).public_bytes(Encoding.PEM)


CA_TRUE = (x509.BasicConstraints(ca=True, path_length=None), True)
CA_FALSE = (x509.BasicConstraints(ca=False, path_length=None), True)
NAME_CONSTRAINTS = (
    x509.NameConstraints(permitted_subtrees=[x509.DNSName("example.com")], excluded_subtrees=None),
    True,
)
SERVER_EKU = (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
CLIENT_EKU = (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
CERT_SIGN = (
    x509.KeyUsage(True, False, False, False, False, True, False, False, False),
    True,
)

# (rules, how the request is made, signer, usages, username) -> reason
CLIENT_REFUSALS: list[tuple[str, Callable[[PrivateKey], KubernetesCSR], Reason, str]] = [
    ("system:masters", lambda k: csr(request(k, "mallory", ("system:masters",))), Reason.IDENTITY, "system:masters"),
    ("kubeadm admins", lambda k: csr(request(k, "m", ("kubeadm:cluster-admins",))), Reason.IDENTITY, "privileged"),
    ("system: user", lambda k: csr(request(k, "system:kube-scheduler")), Reason.IDENTITY, "privileged"),
    ("node identity", lambda k: csr(request(k, "system:node:n1", ("system:nodes",))), Reason.IDENTITY, "privileged"),
    ("bad user name", lambda k: csr(request(k, "-rf")), Reason.IDENTITY, "pattern"),
    ("CA:TRUE", lambda k: csr(request(k, "alice", extensions=(CA_TRUE,))), Reason.CA_REQUESTED, "CA:TRUE"),
    ("other extension", lambda k: csr(request(k, "alice", extensions=(NAME_CONSTRAINTS,))), Reason.EXTENSION, "name"),
    ("cert sign usage", lambda k: csr(request(k, "alice", extensions=(CERT_SIGN,))), Reason.EXTENSION, "keyCertSign"),
    ("server EKU", lambda k: csr(request(k, "alice", extensions=(SERVER_EKU,))), Reason.EXTENSION, "serverAuth"),
    ("serving usage", lambda k: csr(request(k, "alice"), usages=SERVING_USAGES), Reason.USAGES, "server auth"),
    ("no client auth", lambda k: csr(request(k, "alice"), usages=("digital signature",)), Reason.USAGES, "requires"),
    ("usage twice", lambda k: csr(request(k, "alice"), usages=("client auth", "client auth")), Reason.USAGES, "twice"),
    ("cert sign", lambda k: csr(request(k, "alice"), usages=("client auth", "cert sign")), Reason.USAGES, "cert sign"),
    ("SAN outside", lambda k: csr(request(k, "alice", sans=("DNS:evil.example",))), Reason.SANS, "evil.example"),
    ("bad signature", lambda k: csr(tampered(request(k, "alice"))), Reason.BAD_SIGNATURE, "signature"),
    (
        "not a CSR",
        lambda k: csr(b"-----BEGIN CERTIFICATE REQUEST-----\nAA==\n-----END CERTIFICATE REQUEST-----\n"),
        Reason.MALFORMED,
        "not a certificate signing request",
    ),
    ("other signer", lambda k: csr(request(k, "alice"), signer=KUBELET_SERVING), Reason.MALFORMED, "signerName"),
]


@pytest.mark.parametrize(("what", "make", "reason", "words"), CLIENT_REFUSALS, ids=[r[0] for r in CLIENT_REFUSALS])
def test_the_client_signer_refuses(
    key: PrivateKey, what: str, make: Callable[[PrivateKey], KubernetesCSR], reason: Reason, words: str
) -> None:
    error = refused(KUBE_APISERVER_CLIENT_RULES, make(key))
    assert error.reason is reason
    assert words in str(error)


@pytest.mark.parametrize(
    "make",
    [
        lambda k: csr(request(k, "alice", ("dev",))),
        lambda k: csr(request(k, "alice"), usages=("client auth",)),
        lambda k: csr(request(k, "alice", extensions=(CA_FALSE, CLIENT_EKU))),
        lambda k: csr(request(k, "alice", sans=("DNS:alice.svc",))),
    ],
    ids=["groups", "client auth alone", "CA:FALSE and clientAuth asked", "an allowed SAN"],
)
def test_the_client_signer_accepts_the_twins(key: PrivateKey, make: Callable[[PrivateKey], KubernetesCSR]) -> None:
    signed = review(KUBE_APISERVER_CLIENT_RULES, make(key), POLICY, TTL)
    assert signed.profile.name == "client"


def test_a_weak_key_is_refused_and_a_strong_one_signed() -> None:
    weak = generate_private_key(KeyType.RSA_2048)
    policy = SigningPolicy(min_rsa_bits=3072)
    with pytest.raises(CsrRefused) as caught:
        review(KUBE_APISERVER_CLIENT_RULES, csr(request(weak, "alice")), policy, TTL)
    assert caught.value.reason is Reason.WEAK_KEY
    review(KUBE_APISERVER_CLIENT_RULES, csr(request(weak, "alice")), SigningPolicy(), TTL)


def test_an_rsa_1024_request_is_refused_by_the_default_policy(tmp_path: Path) -> None:
    import subprocess

    from tests.components.support import require_binary

    openssl = require_binary("openssl")
    out = tmp_path / "r.csr"
    subprocess.run(
        [str(openssl), "req", "-new", "-newkey", "rsa:1024", "-nodes", "-keyout", str(tmp_path / "k"), "-subj",
         "/CN=alice", "-out", str(out)],
        check=True, capture_output=True,
    )  # fmt: skip
    error = refused(KUBE_APISERVER_CLIENT_RULES, csr(out.read_bytes()))
    assert error.reason is Reason.WEAK_KEY and "1024" in str(error)


NODE = ("system:node:n1", ("system:nodes",))
KUBELET_CLIENT_USAGES = ("digital signature", "client auth")


def node_csr(pem: bytes, signer: str, usages: tuple[str, ...], username: str = "system:node:n1") -> KubernetesCSR:
    return KubernetesCSR(pem, signer, usages, username, ("system:nodes", "system:authenticated"))


NODE_REFUSALS: list[tuple[str, SignerRules, Callable[[PrivateKey], KubernetesCSR], Reason]] = [
    ("client: extra O", KUBELET_CLIENT_RULES,
     lambda k: node_csr(request(k, "system:node:n1", ("system:nodes", "system:masters")),
                        KUBE_APISERVER_CLIENT_KUBELET, KUBELET_CLIENT_USAGES), Reason.IDENTITY),
    ("client: not a node CN", KUBELET_CLIENT_RULES,
     lambda k: node_csr(request(k, "system:admin", ("system:nodes",)), KUBE_APISERVER_CLIENT_KUBELET,
                        KUBELET_CLIENT_USAGES), Reason.IDENTITY),
    ("client: bad node name", KUBELET_CLIENT_RULES,
     lambda k: node_csr(request(k, "system:node:Bad_Name", ("system:nodes",)), KUBE_APISERVER_CLIENT_KUBELET,
                        KUBELET_CLIENT_USAGES), Reason.IDENTITY),
    ("client: a SAN", KUBELET_CLIENT_RULES,
     lambda k: node_csr(request(k, *NODE, sans=("DNS:n1",)), KUBE_APISERVER_CLIENT_KUBELET, KUBELET_CLIENT_USAGES),
     Reason.SANS),
    ("client: server auth", KUBELET_CLIENT_RULES,
     lambda k: node_csr(request(k, *NODE), KUBE_APISERVER_CLIENT_KUBELET, ("digital signature", "server auth")),
     Reason.USAGES),
    ("serving: no SAN", SERVING,
     lambda k: node_csr(request(k, *NODE), KUBELET_SERVING, SERVING_USAGES), Reason.SANS),
    ("serving: URI SAN", SERVING,
     lambda k: node_csr(request(k, *NODE, sans=("DNS:n1", "URI:spiffe://x/y")), KUBELET_SERVING, SERVING_USAGES),
     Reason.SANS),
    ("serving: the API server's name", SERVING,
     lambda k: node_csr(request(k, *NODE, sans=("DNS:kubernetes.default.svc",)), KUBELET_SERVING, SERVING_USAGES),
     Reason.SANS),
    ("serving: wildcard", SERVING,
     lambda k: node_csr(request(k, *NODE, sans=("DNS:*.example.com",)), KUBELET_SERVING, SERVING_USAGES), Reason.SANS),
    ("serving: client usage", SERVING,
     lambda k: node_csr(request(k, *NODE, sans=("DNS:n1",)), KUBELET_SERVING, CLIENT_USAGES), Reason.USAGES),
    ("serving: another node asked", SERVING,
     lambda k: node_csr(request(k, *NODE, sans=("DNS:n1",)), KUBELET_SERVING, SERVING_USAGES, "system:node:n2"),
     Reason.REQUESTER),
]  # fmt: skip


@pytest.mark.parametrize(("what", "rules", "make", "reason"), NODE_REFUSALS, ids=[r[0] for r in NODE_REFUSALS])
def test_the_node_signers_refuse(
    key: PrivateKey, what: str, rules: SignerRules, make: Callable[[PrivateKey], KubernetesCSR], reason: Reason
) -> None:
    assert refused(rules, make(key)).reason is reason


def test_the_node_signers_sign_a_nodes_own_requests(key: PrivateKey) -> None:
    client = review(
        KUBELET_CLIENT_RULES,
        node_csr(request(key, *NODE), KUBE_APISERVER_CLIENT_KUBELET, KUBELET_CLIENT_USAGES),
        POLICY,
        TTL,
    )
    assert client.profile is KUBELET_CLIENT
    serving = review(
        SERVING,
        node_csr(request(key, *NODE, sans=("DNS:n1", "IP:10.1.2.3")), KUBELET_SERVING, SERVING_USAGES),
        POLICY,
        TTL,
    )
    assert serving.profile is SERVER and [str(ip) for ip in serving.sans.ips] == ["10.1.2.3"]


def test_kubelet_serving_sans_follow_the_signers_allow_list(key: PrivateKey) -> None:
    narrow = KUBELET_SERVING_RULES.with_sans(("*.nodes.example",), ("10.0.0.0/8",))
    pem = request(key, *NODE, sans=("DNS:n1.nodes.example", "IP:192.168.1.1"))
    with pytest.raises(CsrRefused, match=r"192\.168\.1\.1"):
        review(narrow, node_csr(pem, KUBELET_SERVING, SERVING_USAGES), POLICY, TTL)
    fixed = request(key, *NODE, sans=("DNS:n1.nodes.example", "IP:10.9.9.9"))
    review(narrow, node_csr(fixed, KUBELET_SERVING, SERVING_USAGES), POLICY, TTL)


def test_a_custom_signer_takes_its_usages_from_its_profile(key: PrivateKey) -> None:
    rules = custom_rules("example.com/internal-serving", SERVER)
    pem = request(key, "web", sans=("DNS:web.svc",))
    kube = KubernetesCSR(pem, "example.com/internal-serving", ("server auth",), "admin")
    assert review(rules, kube, POLICY, TTL).profile is SERVER
    wrong = KubernetesCSR(pem, "example.com/internal-serving", ("client auth",), "admin")
    assert refused(rules, wrong).reason is Reason.USAGES


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (None, dt.timedelta(days=1)),
        (3600, dt.timedelta(hours=1)),
        (60, MIN_LIFETIME),
        (10 * 86400, dt.timedelta(days=1)),
    ],
    ids=["signer default", "shorter asked", "floor", "capped by the signer"],
)
def test_expiration_seconds_is_honoured_within_the_bounds(seconds: int | None, expected: dt.timedelta) -> None:
    assert lifetime(seconds, dt.timedelta(days=1), POLICY) == expected


def test_the_policys_max_ttl_caps_the_signers_default() -> None:
    policy = SigningPolicy(max_ttl=dt.timedelta(hours=2))
    assert lifetime(None, dt.timedelta(days=365), policy) == dt.timedelta(hours=2)
    assert lifetime(86400, dt.timedelta(days=365), policy) == dt.timedelta(hours=2)


def test_the_issuer_records_the_requester_and_records_nothing_refused(key: PrivateKey, tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'inv.db'}")
    create_schema(engine)
    inventory = Inventory(engine)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    issuer = CertificateIssuer(CertificateAuthority.create_root("t", now=now), inventory, POLICY, FixedClock(now))
    issued = issuer.sign_kubernetes_csr(
        csr(request(key, "alice", ("dev",)), username="bob"), KUBE_APISERVER_CLIENT_RULES, ttl=TTL, name="csr:c1"
    )
    assert issued.record.requester == "bob" and issued.record.name == "csr:c1"
    assert issued.certificate.not_valid_after_utc - now == TTL
    assert issued.certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "dev"
    eku = issued.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert inventory.count() == 1
    with pytest.raises(CsrRefused):
        issuer.sign_kubernetes_csr(
            csr(request(key, "m", ("system:masters",))), KUBE_APISERVER_CLIENT_RULES, ttl=TTL, name="csr:c2"
        )
    assert inventory.count() == 1


def test_a_request_built_by_authsvc_itself_passes(key: PrivateKey) -> None:
    pem = csr_pem(build_csr(key, user_subject("carol", ("qa",))))
    review(KUBE_APISERVER_CLIENT_RULES, csr(pem), POLICY, TTL)
