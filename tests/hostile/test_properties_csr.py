"""Properties of the CSR signing policy (pki/policy.py) and of signing a request (pki/csr.py):
no input crashes them (a refusal is a PolicyError), and whatever they accept keeps every rule:
no privileged user or group, no CA, a lifetime within the cap, SANs only from the allow-lists,
and only requests whose signature verifies. Bounded: `max_examples` keeps CI fast.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from authsvc.home.opened import Home
from authsvc.settings.pki import PolicySettings
from pki.csr import build_csr
from pki.errors import PolicyError
from pki.issuance import CertificateIssuer
from pki.names import SubjectAltNames, subject_user, user_subject
from pki.policy import SigningPolicy, evaluate_names
from pki.profiles import CLIENT, INTERMEDIATE_CA, KUBELET_CLIENT, PEER, ROOT_CA, SERVER, Profile

BOUNDED = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
POLICY = PolicySettings().to_policy()  # what `authsvc init` configures
PRIVILEGED = "system:*"

names = st.sampled_from(
    [
        "alice",
        "dev",
        "system:masters",
        "system:nodes",
        "system:node:w1",
        "system:kube-controller-manager",
        "system:masters ",
        " system:masters",
        "system:*",
        "\u0455ystem:masters",  # Cyrillic s: another name to RBAC, and refused by the user pattern
        "a/b",
        "..",
        "a\nb",
        "",
    ]
) | st.text(max_size=70)
dns_names = st.sampled_from(
    ["web.svc", "*.svc", "evil.example", "localhost", "x.svc.cluster.local", "LOCALHOST", "a..svc", "*.*.svc", "svc"]
) | st.text(max_size=30)
ips = st.sampled_from(["127.0.0.1", "10.0.0.1", "::1", "169.254.169.254"]).map(ipaddress.ip_address) | st.ip_addresses()
profiles = st.sampled_from([CLIENT, SERVER, PEER, KUBELET_CLIENT, ROOT_CA, INTERMEDIATE_CA])
lifetimes = st.timedeltas(min_value=dt.timedelta(days=-1), max_value=dt.timedelta(days=4000))


@st.composite
def subjects(draw: st.DrawFn) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in draw(st.lists(names, max_size=4))]
    for _ in range(draw(st.integers(0, 2))):
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, draw(names)))
    if draw(st.integers(0, 9)) == 0:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, draw(names)))
    return x509.Name(attributes)


def _privileged(value: str) -> bool:
    return fnmatch.fnmatchcase(value, PRIVILEGED)


def _allowed_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, policy: SigningPolicy) -> bool:
    return any(ip in ipaddress.ip_network(cidr) for cidr in policy.allowed_ip_sans)


@BOUNDED
@given(data=st.data())
def test_the_policy_refuses_or_accepts_only_what_it_allows(data: st.DataObject) -> None:
    profile: Profile = data.draw(profiles)
    try:
        subject = data.draw(subjects())
        sans = SubjectAltNames(
            tuple(data.draw(st.lists(dns_names, max_size=3))), tuple(data.draw(st.lists(ips, max_size=2)))
        )
    except ValueError:  # cryptography refuses some attribute values itself (e.g. an empty CN)
        assume(False)
        raise
    ttl = data.draw(lifetimes)
    try:
        evaluate_names(POLICY, profile=profile, subject=subject, sans=sans, ttl=ttl)
    except PolicyError:
        return
    user, groups = subject_user(subject)
    assert not profile.is_ca
    assert not _privileged(user) and not any(_privileged(g) for g in groups)
    assert dt.timedelta(0) < ttl <= POLICY.max_ttl
    assert all(
        not d.startswith("*") and any(fnmatch.fnmatchcase(d.lower(), p) for p in POLICY.allowed_dns_sans)
        for d in sans.dns
    )
    assert all(_allowed_ip(ip, POLICY) for ip in sans.ips)


@pytest.fixture(scope="module")
def issuer(shared_home: Home) -> CertificateIssuer:
    """The home's cluster CA under the default policy, recording nothing."""
    return CertificateIssuer(shared_home.stores.load_ca(), None, POLICY, shared_home.clock)


def _csr_der(user: str, *groups: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return build_csr(key, user_subject(user, groups)).public_bytes(serialization.Encoding.DER)


REQUESTS = {"allowed": _csr_der("bob", "dev"), "privileged": _csr_der("bob", "system:masters")}


@BOUNDED
@given(data=st.data())
def test_a_changed_request_is_refused_or_still_verifies(issuer: CertificateIssuer, data: st.DataObject) -> None:
    base = data.draw(st.sampled_from(sorted(REQUESTS)))
    request = bytearray(REQUESTS[base])
    for at, value in data.draw(
        st.lists(st.tuples(st.integers(0, len(request) - 1), st.integers(0, 255)), min_size=1, max_size=4)
    ):
        request[at] = value
    try:
        issued = issuer.sign_csr(bytes(request), profile=CLIENT, ttl=dt.timedelta(hours=1))
    except PolicyError:
        return
    assert base == "allowed"  # a privileged request stays refused however it is changed
    assert x509.load_der_x509_csr(bytes(request)).is_signature_valid
    user, groups = subject_user(issued.certificate.subject)
    assert not _privileged(user) and not any(_privileged(g) for g in groups)


@BOUNDED
@given(st.binary(max_size=1024))
def test_any_bytes_are_refused_as_a_request(issuer: CertificateIssuer, request: bytes) -> None:
    with pytest.raises(PolicyError):
        issuer.sign_csr(request, profile=CLIENT, ttl=dt.timedelta(hours=1))
