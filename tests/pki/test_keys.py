"""Keys: every type round-trips through PKCS#8 PEM, encryption at rest, weak keys refused."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pki.ca import CertificateAuthority
from pki.errors import CAError, KeyMaterialError, PolicyError
from pki.keys import (
    KEY_TYPES,
    KeyType,
    PrivateKey,
    check_key_strength,
    describe_key,
    keys_match,
    load_private_key_pem,
    private_key_to_pem,
)
from pki.names import user_subject
from pki.profiles import CLIENT
from pki.store import write_private_key
from tests.pki.conftest import run_openssl

LABELS = {
    KeyType.EC_P256: "ECDSA-P256",
    KeyType.EC_P384: "ECDSA-P384",
    KeyType.RSA_2048: "RSA-2048",
    KeyType.RSA_3072: "RSA-3072",
    KeyType.RSA_4096: "RSA-4096",
    KeyType.ED25519: "Ed25519",
}


@pytest.mark.parametrize("key_type", list(KeyType))
def test_pkcs8_round_trip_plain_and_encrypted(key_type: KeyType, session_keys: Callable[[KeyType], PrivateKey]) -> None:
    key = session_keys(key_type)
    assert describe_key(key.public_key()) == LABELS[key_type]
    plain = private_key_to_pem(key)
    assert plain.startswith(b"-----BEGIN PRIVATE KEY-----")
    encrypted = private_key_to_pem(key, b"correct horse")
    assert encrypted.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    for pem, passphrase in ((plain, None), (encrypted, b"correct horse")):
        assert keys_match(load_private_key_pem(pem, passphrase), key.public_key())


def test_key_types_are_the_cli_choices() -> None:
    assert KEY_TYPES == ("ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072", "rsa-4096", "ed25519")


@pytest.mark.openssl
def test_openssl_reads_the_encrypted_key(
    session_keys: Callable[[KeyType], PrivateKey], openssl: Path, tmp_path: Path
) -> None:
    path = write_private_key(tmp_path / "k.pem", session_keys(KeyType.EC_P256), b"s3cret")
    assert run_openssl(openssl, "pkey", "-in", path, "-passin", "pass:s3cret", "-noout").returncode == 0
    assert run_openssl(openssl, "pkey", "-in", path, "-passin", "pass:wrong", "-noout").returncode != 0


def test_passphrase_errors_are_one_clear_line(session_keys: Callable[[KeyType], PrivateKey]) -> None:
    key = session_keys(KeyType.EC_P256)
    encrypted, plain = private_key_to_pem(key, b"right"), private_key_to_pem(key)
    with pytest.raises(KeyMaterialError, match=r"ca\.key is encrypted: set its passphrase in pki\.key_passphrase_file"):
        load_private_key_pem(encrypted, None, source="ca.key")
    with pytest.raises(KeyMaterialError, match="wrong passphrase"):
        load_private_key_pem(encrypted, b"wrong", source="ca.key")
    with pytest.raises(KeyMaterialError, match="not encrypted but a key passphrase is configured"):
        load_private_key_pem(plain, b"right", source="ca.key")
    with pytest.raises(KeyMaterialError, match="not a PEM private key"):
        load_private_key_pem(b"garbage", None, source="ca.key")


def test_empty_passphrase_fails_closed(session_keys: Callable[[KeyType], PrivateKey]) -> None:
    with pytest.raises(KeyMaterialError, match="passphrase is empty"):
        private_key_to_pem(session_keys(KeyType.EC_P256), b"")


@pytest.mark.parametrize(
    ("public_key", "reason"),
    [
        (lambda: rsa.generate_private_key(65537, 1024).public_key(), "RSA key of 1024 bits is too weak"),
        (lambda: ec.generate_private_key(ec.SECP521R1()).public_key(), "secp521r1 is not supported"),
        (lambda: ec.generate_private_key(ec.SECP256K1()).public_key(), "secp256k1 is not supported"),
        (lambda: ec.generate_private_key(ec.SECP224R1()).public_key(), "secp224r1 is not supported"),
    ],
    ids=["rsa-1024", "p-521", "secp256k1", "p-224"],
)
def test_weak_or_unsupported_keys_are_refused_for_signing(public_key: Callable[[], object], reason: str) -> None:
    key = public_key()
    with pytest.raises(PolicyError, match=reason):
        check_key_strength(key)  # type: ignore[arg-type]
    ca = CertificateAuthority.create_root("r", now=dt.datetime.now(dt.UTC))
    with pytest.raises(PolicyError, match=reason):
        ca.issue(subject=user_subject("x"), public_key=key, profile=CLIENT, now=dt.datetime.now(dt.UTC))  # type: ignore[arg-type]


def test_ca_load_checks_key_match_and_ca_flag(
    root_ca: CertificateAuthority, other_ca: CertificateAuthority, session_keys: Callable[[KeyType], PrivateKey]
) -> None:
    assert CertificateAuthority.load(root_ca.certificate, root_ca.key).certificate == root_ca.certificate
    with pytest.raises(CAError, match="does not match"):
        CertificateAuthority.load(root_ca.certificate, other_ca.key)
    key = session_keys(KeyType.EC_P256)
    leaf = root_ca.issue(
        subject=user_subject("x"), public_key=key.public_key(), profile=CLIENT, now=dt.datetime.now(dt.UTC)
    )
    with pytest.raises(CAError, match="not a CA"):
        CertificateAuthority.load(leaf, key)


def _inconsistent_rsa_pem(session_keys: Callable[[KeyType], PrivateKey]) -> bytes:
    """An RSA-2048 key whose private exponent does not match its primes (a corrupted or planted key)."""
    good = session_keys(KeyType.RSA_2048)
    assert isinstance(good, rsa.RSAPrivateKey)
    n = good.private_numbers()
    bad = rsa.RSAPrivateNumbers(n.p, n.q, n.d + 2, n.dmp1, n.dmq1, n.iqmp, n.public_numbers)
    return private_key_to_pem(bad.private_key(unsafe_skip_rsa_key_validation=True))


def test_an_untrusted_rsa_key_is_checked_for_consistency(session_keys: Callable[[KeyType], PrivateKey]) -> None:
    with pytest.raises(KeyMaterialError, match=r"imported\.key: cannot read the private key"):
        load_private_key_pem(_inconsistent_rsa_pem(session_keys), source="imported.key")


def test_a_key_from_the_home_skips_the_rsa_consistency_check(session_keys: Callable[[KeyType], PrivateKey]) -> None:
    """The check costs ~40 ms per RSA-2048 load; keys authsvc wrote itself are trusted."""
    key = load_private_key_pem(_inconsistent_rsa_pem(session_keys), source="home ca.key", trusted=True)
    assert isinstance(key, rsa.RSAPrivateKey)
