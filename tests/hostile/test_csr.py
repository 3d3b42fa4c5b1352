"""Hostile CSRs through `authsvc certs sign`: each refused with one line, nothing signed or recorded.

Each row: a CSR (and the command's options), the decision and the exit status. The first row
is the twin: a well-formed request under the policy is signed (so the refusals are real).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.x509.oid import NameOID

from authsvc.home.opened import Home
from tests.conftest import CliResult, run_cli
from tests.hostile.support import home_state, one_error_line

Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | dsa.DSAPrivateKey


def subject(cn: str = "bob", *groups: str, **others: str) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
    attributes += [x509.NameAttribute(getattr(NameOID, oid), value) for oid, value in others.items()]
    return x509.Name([*attributes, x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def p256() -> Key:
    return ec.generate_private_key(ec.SECP256R1())


def csr(
    name: x509.Name | None = None,
    *,
    key: Callable[[], Key] = p256,
    sans: list[x509.GeneralName] | None = None,
    ca: bool | None = None,
) -> bytes:
    """A PEM CSR signed by a fresh key (cryptography's builder, as a requester would make it)."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(name or subject("bob", "dev"))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    return builder.sign(key(), hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def bad_signature() -> bytes:
    """A valid request with the last byte of its signature changed."""
    der = bytearray(x509.load_pem_x509_csr(csr()).public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01
    return x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)


def unknown_version() -> bytes:
    """A request claiming PKCS#10 version 2 (the INTEGER 1; only 0 exists)."""
    der = x509.load_pem_x509_csr(csr()).public_bytes(serialization.Encoding.DER)
    return der.replace(b"\x02\x01\x00", b"\x02\x01\x01", 1)


def dns(*names: str) -> list[x509.GeneralName]:
    return [x509.DNSName(n) for n in names]


@dataclass(frozen=True)
class Row:
    name: str
    make: Callable[[], bytes]
    says: str  # part of the one-line error
    options: list[str] = field(default_factory=list)


ROWS = [
    Row("bad signature", bad_signature, "signature is invalid"),
    Row(
        "not a CSR", lambda: b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", "not a"
    ),
    Row("unknown version", unknown_version, "not a certificate signing request"),
    Row("CA:TRUE asked", lambda: csr(ca=True), "CA:TRUE"),
    Row("system:masters", lambda: csr(subject("bob", "system:masters")), "system:masters"),
    Row("system:masters among others", lambda: csr(subject("bob", "dev", "system:masters")), "system:masters"),
    Row("a system: user", lambda: csr(subject("system:kube-controller-manager")), "privileged"),
    Row("a node's identity", lambda: csr(subject("system:node:w1", "system:nodes")), "privileged"),
    Row("RSA-1024", lambda: csr(key=lambda: rsa.generate_private_key(65537, 1024)), "too weak"),
    Row("curve P-521", lambda: csr(key=lambda: ec.generate_private_key(ec.SECP521R1())), "not supported"),
    Row("curve secp256k1", lambda: csr(key=lambda: ec.generate_private_key(ec.SECP256K1())), "not supported"),
    Row("DSA key", lambda: csr(key=lambda: dsa.generate_private_key(1024)), "not supported"),
    Row("TTL over the cap", csr, "exceeds", ["--ttl", "400d"]),
    Row("DNS SAN outside the policy", lambda: csr(sans=dns("evil.example")), "not allowed"),
    Row(
        "server SAN outside the policy",
        lambda: csr(subject("web"), sans=dns("evil.example")),
        "not allowed",
        ["--profile", "server"],
    ),
    Row("wildcard SAN", lambda: csr(subject("web"), sans=dns("*.svc")), "wildcard", ["--profile", "server"]),
    Row(
        "IP SAN outside the policy", lambda: csr(sans=[x509.IPAddress(ipaddress.ip_address("10.0.0.1"))]), "not allowed"
    ),
    Row("URI SAN", lambda: csr(sans=[x509.UniformResourceIdentifier("spiffe://evil/ns/x")]), "URI"),
    Row("extra subject attribute", lambda: csr(subject("bob", "dev", ORGANIZATIONAL_UNIT_NAME="ops")), "not allowed"),
    Row("newline in the name", lambda: csr(subject("bob\nadmin", "dev")), "control character"),
]


def _sign(home: Home, tmp_path: Path, request: bytes, options: list[str]) -> tuple[CliResult, Path]:
    csr_file, out = tmp_path / "request.csr", tmp_path / "out" / "signed.crt"
    csr_file.write_bytes(request)
    out.parent.mkdir()
    return run_cli(["certs", "sign", str(csr_file), "-o", str(out), *options], home=home.root), out


def test_the_twin_is_signed(home: Home, tmp_path: Path) -> None:
    before = home_state(home.root)
    result, out = _sign(home, tmp_path, csr(), [])
    assert result.exit_code == 0, result.stderr
    assert x509.load_pem_x509_certificate(out.read_bytes()).subject == subject("bob", "dev")
    assert home_state(home.root).rows["certificates"] == before.rows["certificates"] + 1


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_hostile_csr_is_refused(shared_home: Home, tmp_path: Path, row: Row) -> None:
    request = row.make()
    before = home_state(shared_home.root)
    result, out = _sign(shared_home, tmp_path, request, row.options)
    assert (result.exit_code, result.stdout) == (1, "")
    line = one_error_line(result.stderr)
    assert line.startswith("error: ") and row.says in line
    assert not out.exists() and list(out.parent.iterdir()) == []
    assert before.changes(home_state(shared_home.root)) == []
