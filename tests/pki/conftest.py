"""Fixtures for the pki tests: keys made once per session (RSA-4096 is slow), CAs, openssl."""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from pki.ca import CertificateAuthority
from pki.keys import KeyType, PrivateKey, generate_private_key
from tests.components.support import require_binary


@pytest.fixture(scope="session")
def session_keys() -> Callable[[KeyType], PrivateKey]:
    """One private key per key type for the whole session, generated on first use."""
    cache: dict[KeyType, PrivateKey] = {}

    def key_of(kind: KeyType) -> PrivateKey:
        if kind not in cache:
            cache[kind] = generate_private_key(kind)
        return cache[kind]

    return key_of


@pytest.fixture(scope="session")
def now() -> dt.datetime:
    """The real current second: openssl checks validity against the real clock."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@pytest.fixture(scope="session")
def root_ca(now: dt.datetime) -> CertificateAuthority:
    return CertificateAuthority.create_root("authsvc test root", now=now)


@pytest.fixture(scope="session")
def other_ca(now: dt.datetime) -> CertificateAuthority:
    """A second, unrelated root: the failing twin of every verification."""
    return CertificateAuthority.create_root("authsvc test root", now=now)


@pytest.fixture(scope="session")
def openssl() -> Path:
    return require_binary("openssl")


def write_pem(path: Path, *certs: x509.Certificate) -> Path:
    path.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in certs))
    return path


def run_openssl(openssl: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run openssl; the caller checks returncode (failures are half of what we test)."""
    return subprocess.run([str(openssl), *map(str, args)], capture_output=True, text=True, timeout=60, check=False)
