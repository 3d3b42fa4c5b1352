"""`pki check`: a kube-bench style audit of a PKI directory, as data.

The checks follow the CIS Kubernetes Benchmark's control-plane file checks (1.1.19-1.1.21:
PKI files owned by root, certificates 0644 or stricter, keys 0600) and what kube-apiserver,
etcd and their clients need from the files: keys strong enough, CAs that are CAs, the API
server's certificate valid for every name the `kubernetes` Service is reached by, certificates
not about to expire, keys that belong to their certificates, leaves signed by their kubeadm CA.
Each problem is a Finding; the caller decides what they mean (the CLI exits 1 when there are any).
"""

from __future__ import annotations

import datetime as dt
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from pki.durations import format_duration
from pki.errors import KeyMaterialError, PKIError, PolicyError
from pki.issued_by import issued_by
from pki.keys import PrivateKey, PublicKey, check_key_strength, keys_match, load_public_key_pem
from pki.kubeadm.certlist import (
    CA_SPECS,
    CERT_SPECS,
    DEFAULT_DNS_DOMAIN,
    DEFAULT_SERVICE_CIDR,
    apiserver_required_names,
)
from pki.kubeadm.expiration import DEFAULT_WARN_WITHIN, is_ca_certificate
from pki.names import SubjectAltNames
from pki.store import KEY_FORBIDDEN_BITS

KEY_SUFFIXES = (".key",)
PUBLIC_SUFFIXES = (".crt", ".pem", ".pub")
# Certificates: no write or execute for group and others (0644 or stricter). Keys: owner only
# (KEY_FORBIDDEN_BITS, whoever owns the file: CIS asks for 0600).
CERT_FORBIDDEN_BITS = 0o133


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Finding:
    check: str  # key-mode, cert-mode, key-strength, ca-constraints, apiserver-sans, expiry, pair, chain, unreadable
    path: str  # relative to the audited directory
    severity: Severity
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"check": self.check, "path": self.path, "severity": self.severity.value, "message": self.message}


@dataclass(frozen=True, slots=True)
class AuditOptions:
    now: dt.datetime
    warn_within: dt.timedelta = DEFAULT_WARN_WITHIN
    service_cidr: str = DEFAULT_SERVICE_CIDR
    dns_domain: str = DEFAULT_DNS_DOMAIN


def audit_pki_dir(root: Path, options: AuditOptions) -> list[Finding]:
    """Every finding for the files under `root`, in path order (an empty list: clean)."""
    findings: list[Finding] = []
    keys = _KeyCache()
    for path in _pki_files(root):
        rel = path.relative_to(root).as_posix()
        findings += _mode_findings(path, rel)
        try:
            if path.suffix in KEY_SUFFIXES:
                findings += _key_findings(keys, path, rel)
            elif path.suffix == ".crt":
                findings += _cert_findings(keys, root, path, rel, options)
        except (PKIError, ValueError, OSError) as e:
            findings.append(Finding("unreadable", rel, Severity.ERROR, f"cannot be read: {e}"))
    findings += _service_account_findings(keys, root)
    return findings


class _KeyCache:
    """Each private key parsed once per audit, public half only.

    The audit compares public keys and sizes and never signs, so RSA's private-key consistency
    check (tens of milliseconds per key, most of an audit's time) is skipped.
    """

    def __init__(self) -> None:
        self._keys: dict[Path, PrivateKey | None] = {}

    def get(self, path: Path) -> PrivateKey | None:
        """The key, or None when it is encrypted at rest (its certificate's key is checked instead)."""
        if path not in self._keys:
            data = path.read_bytes()
            encrypted = b"ENCRYPTED" in data.split(b"\n", 1)[0]
            self._keys[path] = None if encrypted else _parse_key(data, path.name)
        return self._keys[path]


def _parse_key(data: bytes, source: str) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None, unsafe_skip_rsa_key_validation=True)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise KeyMaterialError(f"{source}: not a PEM private key") from e
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise KeyMaterialError(f"{source}: unsupported key algorithm {type(key).__name__}")
    return key


def _pki_files(root: Path) -> Iterator[Path]:
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a directory")
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in (*KEY_SUFFIXES, *PUBLIC_SUFFIXES):
            yield path


def _mode_findings(path: Path, rel: str) -> list[Finding]:
    mode = stat.S_IMODE(path.stat().st_mode)
    if path.suffix in KEY_SUFFIXES and mode & KEY_FORBIDDEN_BITS:
        return [Finding("key-mode", rel, Severity.ERROR, f"private key mode {mode:04o}: must be 0600 or stricter")]
    if path.suffix in PUBLIC_SUFFIXES and mode & CERT_FORBIDDEN_BITS:
        return [Finding("cert-mode", rel, Severity.ERROR, f"mode {mode:04o}: must be 0644 or stricter")]
    return []


def _key_findings(keys: _KeyCache, path: Path, rel: str) -> list[Finding]:
    key = keys.get(path)
    return [] if key is None else _strength_findings(key.public_key(), rel)


def _strength_findings(public_key: PublicKey, rel: str) -> list[Finding]:
    try:
        check_key_strength(public_key)
    except PolicyError as e:
        return [Finding("key-strength", rel, Severity.ERROR, str(e))]
    return []


def _cert_findings(keys: _KeyCache, root: Path, path: Path, rel: str, options: AuditOptions) -> list[Finding]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    base = rel.removesuffix(".crt")
    findings = _strength_findings(cert.public_key(), rel)  # type: ignore[arg-type]
    findings += _constraint_findings(cert, base, rel)
    findings += _expiry_findings(cert, rel, options)
    findings += _pair_findings(keys, cert, path.with_suffix(".key"), rel)
    findings += _chain_findings(root, cert, base, rel)
    if base == "apiserver":
        findings += _apiserver_san_findings(cert, rel, options)
    return findings


def _constraint_findings(cert: x509.Certificate, base: str, rel: str) -> list[Finding]:
    kubeadm_ca = base in {s.base_name for s in CA_SPECS}
    if kubeadm_ca and not is_ca_certificate(cert):
        return [Finding("ca-constraints", rel, Severity.ERROR, "kubeadm's CA file is not a CA (basicConstraints)")]
    if not is_ca_certificate(cert):
        return []
    problems = []
    if not cert.extensions.get_extension_for_class(x509.BasicConstraints).critical:
        problems.append("basicConstraints is not critical (RFC 5280 4.2.1.9)")
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        if not usage.key_cert_sign:
            problems.append("keyUsage lacks keyCertSign")
    except x509.ExtensionNotFound:
        problems.append("no keyUsage extension")
    if base in {s.base_name for s in CERT_SPECS}:
        problems.append("kubeadm's leaf is a CA (CA:TRUE)")
    return [Finding("ca-constraints", rel, Severity.ERROR, p) for p in problems]


def _expiry_findings(cert: x509.Certificate, rel: str, options: AuditOptions) -> list[Finding]:
    not_after = cert.not_valid_after_utc
    if not_after <= options.now:
        return [Finding("expiry", rel, Severity.ERROR, f"expired at {not_after:%Y-%m-%dT%H:%M:%SZ}")]
    if cert.not_valid_before_utc > options.now:
        return [
            Finding("expiry", rel, Severity.WARNING, f"not valid before {cert.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ}")
        ]
    left = not_after - options.now
    if left < options.warn_within:
        when = f"{not_after:%Y-%m-%dT%H:%M:%SZ}"
        message = f"expires in {format_duration(left)} ({when}), within {format_duration(options.warn_within)}"
        return [Finding("expiry", rel, Severity.WARNING, message)]
    return []


def _pair_findings(keys: _KeyCache, cert: x509.Certificate, key_path: Path, rel: str) -> list[Finding]:
    if not key_path.is_file():
        return []
    try:
        key = keys.get(key_path)
    except PKIError:
        return []  # reported as unreadable by the key's own checks
    if key is None or keys_match(key, cert.public_key()):  # type: ignore[arg-type]
        return []
    return [Finding("pair", rel, Severity.ERROR, f"{key_path.name} does not match this certificate")]


def _chain_findings(root: Path, cert: x509.Certificate, base: str, rel: str) -> list[Finding]:
    spec = next((s for s in CERT_SPECS if s.base_name == base), None)
    ca_path = root / f"{spec.ca}.crt" if spec else None
    if spec is None or ca_path is None or not ca_path.is_file():
        return []
    if not _signed_by_file(cert, ca_path):
        return [Finding("chain", rel, Severity.ERROR, f"not signed by {spec.ca}.crt")]
    return []


def _signed_by_file(cert: x509.Certificate, ca_path: Path) -> bool:
    """False as well when `ca_path` holds no certificate: nothing there vouches for `cert`."""
    try:
        ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
    except ValueError:
        return False
    return issued_by(cert, ca)


def _apiserver_san_findings(cert: x509.Certificate, rel: str, options: AuditOptions) -> list[Finding]:
    present = set(SubjectAltNames.from_certificate_like(cert.extensions).as_strings())
    missing = [n for n in apiserver_required_names(options.service_cidr, options.dns_domain) if n not in present]
    if not missing:
        return []
    message = f"SANs lack {', '.join(missing)}: in-cluster clients of the kubernetes Service would fail TLS"
    return [Finding("apiserver-sans", rel, Severity.ERROR, message)]


def _service_account_findings(keys: _KeyCache, root: Path) -> list[Finding]:
    key_path, pub_path = root / "sa.key", root / "sa.pub"
    if not (key_path.is_file() and pub_path.is_file()):
        return []
    try:
        key = keys.get(key_path)
        public = load_public_key_pem(pub_path.read_bytes(), source="sa.pub")
    except PKIError as e:
        return [Finding("unreadable", "sa.pub", Severity.ERROR, f"cannot be read: {e}")]
    findings = _strength_findings(public, "sa.pub")
    if key is not None and not keys_match(key, public):
        findings.append(Finding("pair", "sa.pub", Severity.ERROR, "does not match sa.key"))
    return findings
