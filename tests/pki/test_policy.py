"""The signing policy and the issuer, in-process: each refusal names its reason and records nothing."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from pki.ca import CertificateAuthority
from pki.clock import FixedClock
from pki.csr import build_csr, csr_pem
from pki.db import create_schema, make_engine
from pki.errors import PolicyError
from pki.inventory import Inventory
from pki.issuance import CertificateIssuer
from pki.keys import KeyType, PrivateKey
from pki.names import SubjectAltNames, user_subject
from pki.policy import SigningPolicy
from pki.profiles import CLIENT, KUBELET_CLIENT, PEER, ROOT_CA, SERVER

POLICY = SigningPolicy(allowed_dns_sans=("*.svc", "localhost"), allowed_ip_sans=("127.0.0.0/8",))


@pytest.fixture
def inventory(tmp_path: Path) -> Inventory:
    engine = make_engine(f"sqlite:///{tmp_path / 'inv.db'}")
    create_schema(engine)
    return Inventory(engine)


@pytest.fixture
def issuer(root_ca: CertificateAuthority, inventory: Inventory, now: dt.datetime) -> CertificateIssuer:
    return CertificateIssuer(root_ca, inventory, POLICY, FixedClock(now))


def csr_for(key: PrivateKey, user: str, groups: tuple[str, ...] = (), sans: tuple[str, ...] = ()) -> bytes:
    return csr_pem(build_csr(key, user_subject(user, groups), SubjectAltNames.parse(sans)))


REFUSED_CREATES = [
    ({"user": "mallory", "groups": ["system:masters"]}, "group 'system:masters' is privileged"),
    ({"user": "mallory", "groups": ["system:nodes"]}, "group 'system:nodes' is privileged"),
    ({"user": "system:admin"}, "user name 'system:admin' is privileged"),
    ({"user": "-rf"}, "does not match the policy's pattern"),
    ({"user": "a" * 65}, "does not fit in a certificate"),
    ({"user": "alice", "ttl": dt.timedelta(days=366)}, "exceeds the policy's maximum"),
    ({"user": "web", "profile": SERVER}, "needs at least one DNS or IP SAN"),
    ({"user": "web", "profile": SERVER, "sans": ["DNS:evil.example"]}, "DNS SAN 'evil.example' is not allowed"),
    ({"user": "web", "profile": PEER, "sans": ["DNS:*.svc"]}, "wildcard DNS SAN"),
    ({"user": "web", "profile": SERVER, "sans": ["IP:10.0.0.1"]}, "IP SAN 10.0.0.1 is not allowed"),
    ({"user": "web", "profile": CLIENT, "sans": ["URI:spiffe://x/y"]}, "URI and email SANs are not allowed"),
    ({"user": "ca", "profile": ROOT_CA}, "CA certificates cannot be requested"),
    ({"user": "Bad_Node", "profile": KUBELET_CLIENT}, "invalid node name"),
    ({"user": "worker-1", "profile": KUBELET_CLIENT, "groups": ["dev"]}, "carries the group system:nodes only"),
    ({"user": "alice", "key_type": "rsa-2048", "max_rsa": 3072}, "RSA key of 2048 bits is too weak"),
]


@pytest.mark.parametrize(("request_args", "reason"), REFUSED_CREATES, ids=[r for _, r in REFUSED_CREATES])
def test_create_refusals_name_the_reason_and_record_nothing(
    request_args: dict[str, object], reason: str, issuer: CertificateIssuer, inventory: Inventory
) -> None:
    args = dict(request_args)
    if "max_rsa" in args:
        issuer.policy = dataclasses.replace(POLICY, min_rsa_bits=int(str(args.pop("max_rsa"))))
    user = str(args.pop("user"))
    if "sans" in args:
        args["sans"] = SubjectAltNames.parse(args["sans"])  # type: ignore[arg-type]
    with pytest.raises(PolicyError, match=reason.replace("*", r"\*")):
        issuer.create(user, **{"profile": CLIENT, **args})  # type: ignore[arg-type]
    assert inventory.count() == 0


def test_allowed_requests_are_signed_and_recorded(issuer: CertificateIssuer, inventory: Inventory) -> None:
    alice = issuer.create("alice", profile=CLIENT, groups=["dev"], requester="test")
    node = issuer.create("Worker-1", profile=KUBELET_CLIENT)
    web = issuer.create("web", profile=SERVER, sans=SubjectAltNames.parse(["DNS:api.svc", "IP:127.0.0.1"]))
    assert alice.record.groups == ("dev",) and alice.record.requester == "test"
    assert node.certificate.subject.rfc4514_string() == "CN=system:node:worker-1,O=system:nodes"
    assert web.record.sans == ("DNS:api.svc", "IP:127.0.0.1")
    assert {r.serial for r in inventory.certificates()} == {c.record.serial for c in (alice, node, web)}


def test_operator_may_allow_a_privileged_group(
    root_ca: CertificateAuthority, inventory: Inventory, now: dt.datetime
) -> None:
    policy = dataclasses.replace(POLICY, allowed_groups=("system:masters",))
    admin = CertificateIssuer(root_ca, inventory, policy, FixedClock(now)).create(
        "admin", profile=CLIENT, groups=["system:masters"]
    )
    assert admin.record.groups == ("system:masters",)


def test_kubelet_client_is_never_signed_from_a_csr(
    issuer: CertificateIssuer, session_keys: Callable[[KeyType], PrivateKey], inventory: Inventory
) -> None:
    csr = csr_for(session_keys(KeyType.EC_P256), "system:node:worker-1", ("system:nodes",))
    with pytest.raises(PolicyError, match="not through CSRs"):
        issuer.sign_csr(csr, profile=KUBELET_CLIENT)
    with pytest.raises(PolicyError, match="privileged"):
        issuer.sign_csr(csr, profile=CLIENT)
    assert inventory.count() == 0


def test_csr_extensions_are_not_copied(
    issuer: CertificateIssuer, session_keys: Callable[[KeyType], PrivateKey]
) -> None:
    key = session_keys(KeyType.EC_P256)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(user_subject("carol", ("dev",)))
        .add_extension(x509.KeyUsage(True, True, True, True, True, True, True, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert = issuer.sign_csr(csr.public_bytes(Encoding.PEM), profile=CLIENT).certificate
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign and not usage.crl_sign
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]


def test_subject_attributes_other_than_cn_and_o_are_refused(
    issuer: CertificateIssuer, session_keys: Callable[[KeyType], PrivateKey]
) -> None:
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "dave"), x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "x")]
    )
    csr = csr_pem(build_csr(session_keys(KeyType.EC_P256), subject))
    with pytest.raises(PolicyError, match="subject attribute OU is not allowed"):
        issuer.sign_csr(csr, profile=CLIENT)


def test_bad_policy_configuration_is_named() -> None:
    with pytest.raises(ValueError, match="allowed_ip_sans entry 'ten' is not"):
        SigningPolicy(allowed_ip_sans=("ten",))
    with pytest.raises(ValueError, match="user_pattern"):
        SigningPolicy(user_pattern="(")


def test_issuer_without_inventory_records_nothing_but_returns_a_record(
    root_ca: CertificateAuthority, now: dt.datetime
) -> None:
    issued = CertificateIssuer(root_ca, None, POLICY, FixedClock(now)).create("erin", profile=CLIENT)
    assert issued.record.serial == format(issued.certificate.serial_number, "x")
    assert issued.record.not_after == issued.certificate.not_valid_after_utc
