"""Chains verified in-process with cryptography's verifier (PolicyBuilder), each with a failing twin."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.x509.verification import (
    ClientVerifier,
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    ServerVerifier,
    Store,
    VerificationError,
)

from pki.ca import CertificateAuthority
from pki.keys import KeyType, PrivateKey
from pki.names import SubjectAltNames, user_subject
from pki.profiles import CLIENT, KUBELET_CLIENT, PEER, SERVER, Profile

# cryptography's verifier implements the Web PKI profile: Ed25519 is outside its algorithm
# allow-list, so Ed25519 is covered by the openssl tests only.
KEY_TYPES = [KeyType.EC_P256, KeyType.EC_P384, KeyType.RSA_2048]


def client_verifier(root: x509.Certificate, now: dt.datetime) -> ClientVerifier:
    # Kubernetes client certificates name the user in the subject (CN, O) and carry no SAN,
    # which the Web PKI profile would require: allow it to be absent, keep every other rule.
    ee_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
    )
    builder = PolicyBuilder().store(Store([root])).time(now)
    return builder.extension_policies(
        ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee_policy
    ).build_client_verifier()


def server_verifier(root: x509.Certificate, now: dt.datetime, name: x509.DNSName | x509.IPAddress) -> ServerVerifier:
    return PolicyBuilder().store(Store([root])).time(now).build_server_verifier(name)


def leaf(ca: CertificateAuthority, profile: Profile, key: PrivateKey, now: dt.datetime) -> x509.Certificate:
    subject = user_subject("system:node:worker-1", ["system:nodes"]) if profile is KUBELET_CLIENT else None
    sans = SubjectAltNames.parse(["DNS:authsvc.example", "IP:127.0.0.1"]) if profile.needs_sans else None
    return ca.issue(
        subject=subject or user_subject("alice", ["dev"]),
        public_key=key.public_key(),
        profile=profile,
        now=now,
        sans=sans,
    )


@pytest.fixture(scope="module")
def intermediate(root_ca: CertificateAuthority, now: dt.datetime) -> CertificateAuthority:
    return root_ca.create_intermediate("authsvc intermediate", now=now)


@pytest.mark.parametrize("key_type", KEY_TYPES)
@pytest.mark.parametrize("profile", [CLIENT, KUBELET_CLIENT, PEER], ids=lambda p: p.name)
@pytest.mark.parametrize("via_intermediate", [False, True], ids=["root", "intermediate"])
def test_client_chain_verifies_and_another_ca_does_not(
    key_type: KeyType,
    profile: Profile,
    via_intermediate: bool,
    root_ca: CertificateAuthority,
    other_ca: CertificateAuthority,
    intermediate: CertificateAuthority,
    session_keys: Callable[[KeyType], PrivateKey],
    now: dt.datetime,
) -> None:
    ca = intermediate if via_intermediate else root_ca
    cert = leaf(ca, profile, session_keys(key_type), now)
    chain = client_verifier(root_ca.certificate, now).verify(cert, list(ca.intermediates)).chain
    assert chain[0] == cert and chain[-1] == root_ca.certificate
    with pytest.raises(VerificationError):
        client_verifier(other_ca.certificate, now).verify(cert, list(ca.intermediates))


@pytest.mark.parametrize("key_type", KEY_TYPES)
@pytest.mark.parametrize("profile", [SERVER, PEER], ids=lambda p: p.name)
def test_server_chain_verifies_for_its_names_only(
    key_type: KeyType,
    profile: Profile,
    root_ca: CertificateAuthority,
    other_ca: CertificateAuthority,
    intermediate: CertificateAuthority,
    session_keys: Callable[[KeyType], PrivateKey],
    now: dt.datetime,
) -> None:
    cert = leaf(intermediate, profile, session_keys(key_type), now)
    extra = list(intermediate.intermediates)
    for name in (x509.DNSName("authsvc.example"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))):
        assert server_verifier(root_ca.certificate, now, name).verify(cert, extra)[0] == cert
    with pytest.raises(VerificationError):
        server_verifier(other_ca.certificate, now, x509.DNSName("authsvc.example")).verify(cert, extra)
    with pytest.raises(VerificationError):
        server_verifier(root_ca.certificate, now, x509.DNSName("other.example")).verify(cert, extra)


def test_client_certificate_is_not_a_server_certificate(
    root_ca: CertificateAuthority, session_keys: Callable[[KeyType], PrivateKey], now: dt.datetime
) -> None:
    cert = leaf(root_ca, CLIENT, session_keys(KeyType.EC_P256), now)
    with pytest.raises(VerificationError):
        server_verifier(root_ca.certificate, now, x509.DNSName("authsvc.example")).verify(cert, [])


def test_server_certificate_is_not_a_client_certificate(
    root_ca: CertificateAuthority, session_keys: Callable[[KeyType], PrivateKey], now: dt.datetime
) -> None:
    cert = leaf(root_ca, SERVER, session_keys(KeyType.EC_P256), now)
    with pytest.raises(VerificationError):
        client_verifier(root_ca.certificate, now).verify(cert, [])


def test_expired_leaf_fails_verification(
    root_ca: CertificateAuthority, session_keys: Callable[[KeyType], PrivateKey], now: dt.datetime
) -> None:
    cert = root_ca.issue(
        subject=user_subject("alice"),
        public_key=session_keys(KeyType.EC_P256).public_key(),
        profile=CLIENT,
        now=now,
        ttl=dt.timedelta(hours=1),
    )
    client_verifier(root_ca.certificate, now + dt.timedelta(minutes=59)).verify(cert, [])
    with pytest.raises(VerificationError):
        client_verifier(root_ca.certificate, now + dt.timedelta(hours=2)).verify(cert, [])
