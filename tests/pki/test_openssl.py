"""Certificates from the library, checked by the real openssl command line."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509

from pki.builder import CLOCK_SKEW
from pki.ca import CertificateAuthority
from pki.errors import CAError
from pki.keys import KeyType, PrivateKey
from pki.names import SubjectAltNames, user_subject
from pki.profiles import CLIENT, KUBELET_CLIENT, LEAF_PROFILES, PEER, SERVER, Profile
from tests.pki.conftest import run_openssl, write_pem

SANS = SubjectAltNames.parse(["DNS:authsvc.example", "IP:127.0.0.1"])
EKU_NAMES = {
    "client": ["TLS Web Client Authentication"],
    "kubelet-client": ["TLS Web Client Authentication"],
    "server": ["TLS Web Server Authentication"],
    "peer": ["TLS Web Server Authentication, TLS Web Client Authentication"],
}


def issue_leaf(
    ca: CertificateAuthority, profile: Profile, key: PrivateKey, now: dt.datetime, ttl: dt.timedelta | None = None
) -> x509.Certificate:
    subject = user_subject("system:node:worker-1", ["system:nodes"]) if profile is KUBELET_CLIENT else None
    return ca.issue(
        subject=subject or user_subject("alice", ["dev", "ops"]),
        public_key=key.public_key(),
        profile=profile,
        now=now,
        ttl=ttl,
        sans=SANS if profile.needs_sans else None,
    )


def extension_blocks(text: str) -> dict[str, list[str]]:
    """`openssl x509 -text` extensions as {header line: value lines}, e.g. {'X509v3 Key Usage: critical': [...]}."""
    section = text.split("X509v3 extensions:", 1)[1].split("Signature Algorithm:", 1)[0]
    blocks: dict[str, list[str]] = {}
    current = ""
    for line in section.splitlines():
        if not line.strip():
            continue
        if line.startswith(" " * 12) and not line.startswith(" " * 16):
            current = line.strip()
            blocks[current] = []
        else:
            blocks[current].append(line.strip())
    return blocks


def expected_extensions(profile: Profile, key_type: KeyType) -> dict[str, list[str]]:
    usage = "Digital Signature, Key Encipherment" if key_type.value.startswith("rsa") else "Digital Signature"
    blocks = {
        "X509v3 Basic Constraints: critical": ["CA:FALSE"],
        "X509v3 Key Usage: critical": [usage],
        "X509v3 Extended Key Usage:": EKU_NAMES[profile.name],
        "X509v3 Subject Key Identifier:": ["<id>"],
        "X509v3 Authority Key Identifier:": ["<id>"],
    }
    if profile.needs_sans:
        blocks["X509v3 Subject Alternative Name:"] = ["DNS:authsvc.example, IP Address:127.0.0.1"]
    return blocks


def _mask_ids(blocks: dict[str, list[str]]) -> dict[str, list[str]]:
    key_id = re.compile(r"^(keyid:)?([0-9A-F]{2}:){19}[0-9A-F]{2}$")
    return {k: ["<id>" if key_id.match(v) else v for v in values] for k, values in blocks.items()}


@pytest.mark.openssl
@pytest.mark.parametrize("key_type", list(KeyType))
def test_openssl_verifies_every_profile_and_key_type(
    key_type: KeyType,
    session_keys: Callable[[KeyType], PrivateKey],
    root_ca: CertificateAuthority,
    other_ca: CertificateAuthority,
    now: dt.datetime,
    openssl: Path,
    tmp_path: Path,
) -> None:
    ca_file = write_pem(tmp_path / "ca.crt", root_ca.certificate)
    other_file = write_pem(tmp_path / "other.crt", other_ca.certificate)
    for name, profile in LEAF_PROFILES.items():
        leaf = write_pem(tmp_path / f"{name}.crt", issue_leaf(root_ca, profile, session_keys(key_type), now))
        purpose = "sslserver" if profile in (SERVER, PEER) else "sslclient"
        accepted = run_openssl(openssl, "verify", "-purpose", purpose, "-CAfile", ca_file, leaf)
        assert accepted.returncode == 0 and accepted.stdout.strip().endswith(": OK"), (name, accepted.stderr)
        refused = run_openssl(openssl, "verify", "-CAfile", other_file, leaf)
        assert refused.returncode != 0 and "verification failed" in refused.stderr, name


@pytest.mark.openssl
@pytest.mark.parametrize("profile", list(LEAF_PROFILES.values()), ids=list(LEAF_PROFILES))
@pytest.mark.parametrize("key_type", [KeyType.EC_P256, KeyType.RSA_2048, KeyType.ED25519])
def test_openssl_shows_exactly_the_profile_extensions(
    profile: Profile,
    key_type: KeyType,
    session_keys: Callable[[KeyType], PrivateKey],
    root_ca: CertificateAuthority,
    now: dt.datetime,
    openssl: Path,
    tmp_path: Path,
) -> None:
    leaf = write_pem(tmp_path / "leaf.crt", issue_leaf(root_ca, profile, session_keys(key_type), now))
    text = run_openssl(openssl, "x509", "-in", leaf, "-noout", "-text").stdout
    assert _mask_ids(extension_blocks(text)) == expected_extensions(profile, key_type)


@pytest.mark.openssl
def test_root_ca_extensions(root_ca: CertificateAuthority, openssl: Path, tmp_path: Path) -> None:
    text = run_openssl(openssl, "x509", "-in", write_pem(tmp_path / "ca.crt", root_ca.certificate), "-noout", "-text")
    blocks = _mask_ids(extension_blocks(text.stdout))
    assert blocks == {
        "X509v3 Basic Constraints: critical": ["CA:TRUE, pathlen:1"],
        "X509v3 Key Usage: critical": ["Digital Signature, Certificate Sign, CRL Sign"],
        "X509v3 Subject Key Identifier:": ["<id>"],
    }


@pytest.mark.openssl
@pytest.mark.parametrize("ca_key_type", [KeyType.EC_P384, KeyType.RSA_3072, KeyType.ED25519])
def test_every_ca_key_type_signs_verifiable_leaves(
    ca_key_type: KeyType,
    session_keys: Callable[[KeyType], PrivateKey],
    now: dt.datetime,
    openssl: Path,
    tmp_path: Path,
) -> None:
    ca = CertificateAuthority.create_root("root", now=now, key=session_keys(ca_key_type))
    leaf = write_pem(tmp_path / "leaf.crt", issue_leaf(ca, CLIENT, session_keys(KeyType.EC_P256), now))
    ca_file = write_pem(tmp_path / "ca.crt", ca.certificate)
    assert run_openssl(openssl, "verify", "-CAfile", ca_file, leaf).returncode == 0


@pytest.mark.openssl
def test_intermediate_chain_verifies_with_untrusted(
    root_ca: CertificateAuthority,
    other_ca: CertificateAuthority,
    session_keys: Callable[[KeyType], PrivateKey],
    now: dt.datetime,
    openssl: Path,
    tmp_path: Path,
) -> None:
    intermediate = root_ca.create_intermediate("authsvc intermediate", now=now, key_type=KeyType.EC_P384)
    assert intermediate.chain == (root_ca.certificate,) and intermediate.intermediates == (intermediate.certificate,)
    leaf = write_pem(tmp_path / "leaf.crt", issue_leaf(intermediate, SERVER, session_keys(KeyType.RSA_2048), now))
    root_file = write_pem(tmp_path / "root.crt", root_ca.certificate)
    inter_file = write_pem(tmp_path / "inter.crt", intermediate.certificate)
    ok = run_openssl(openssl, "verify", "-CAfile", root_file, "-untrusted", inter_file, leaf)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    without_intermediate = run_openssl(openssl, "verify", "-CAfile", root_file, leaf)
    assert without_intermediate.returncode != 0
    other = run_openssl(
        openssl,
        "verify",
        "-CAfile",
        write_pem(tmp_path / "o.crt", other_ca.certificate),
        "-untrusted",
        inter_file,
        leaf,
    )
    assert other.returncode != 0
    text = run_openssl(openssl, "x509", "-in", inter_file, "-noout", "-text").stdout
    assert "CA:TRUE, pathlen:0" in text
    with pytest.raises(CAError, match="pathlen 0"):
        intermediate.create_intermediate("too deep", now=now)


@pytest.mark.openssl
def test_serial_is_positive_and_at_least_128_bits(
    root_ca: CertificateAuthority,
    session_keys: Callable[[KeyType], PrivateKey],
    now: dt.datetime,
    openssl: Path,
    tmp_path: Path,
) -> None:
    leaf = issue_leaf(root_ca, CLIENT, session_keys(KeyType.EC_P256), now)
    assert leaf.serial_number > 0 and leaf.serial_number.bit_length() >= 128
    shown = run_openssl(openssl, "x509", "-in", write_pem(tmp_path / "l.crt", leaf), "-noout", "-serial").stdout
    assert int(shown.strip().removeprefix("serial="), 16) == leaf.serial_number


@pytest.mark.openssl
def test_not_before_is_backdated_and_not_after_clamped_to_the_ca(
    session_keys: Callable[[KeyType], PrivateKey], now: dt.datetime, openssl: Path, tmp_path: Path
) -> None:
    short_ca = CertificateAuthority.create_root("short-lived", now=now, ttl=dt.timedelta(days=10))
    leaf = issue_leaf(short_ca, CLIENT, session_keys(KeyType.EC_P256), now, ttl=dt.timedelta(days=365))
    assert leaf.not_valid_before_utc == now - CLOCK_SKEW
    assert leaf.not_valid_after_utc == short_ca.not_after
    dates = run_openssl(openssl, "x509", "-in", write_pem(tmp_path / "l.crt", leaf), "-noout", "-dates").stdout
    ca_dates = run_openssl(
        openssl, "x509", "-in", write_pem(tmp_path / "c.crt", short_ca.certificate), "-noout", "-enddate"
    ).stdout
    assert ca_dates.strip() in dates
    # The twin: a leaf shorter than the CA keeps its own lifetime.
    own = issue_leaf(short_ca, CLIENT, session_keys(KeyType.EC_P256), now, ttl=dt.timedelta(days=1))
    assert own.not_valid_after_utc == now + dt.timedelta(days=1)


def test_expired_ca_refuses_to_issue(session_keys: Callable[[KeyType], PrivateKey], now: dt.datetime) -> None:
    ca = CertificateAuthority.create_root("old", now=now - dt.timedelta(days=20), ttl=dt.timedelta(days=10))
    with pytest.raises(CAError, match="expired"):
        issue_leaf(ca, CLIENT, session_keys(KeyType.EC_P256), now)
