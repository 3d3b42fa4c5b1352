"""Reading and validating an existing kubeadm PKI directory (`/etc/kubernetes/pki`) before adopting it.

Everything is checked before anything is copied: each CA is a CA whose key matches it, each
leaf has its key, the key matches, and the leaf is signed by its kubeadm CA; sa.key and sa.pub
belong together. The source directory is only read. The first problem found is raised as a
PKIError with a one-line message naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from pki.ca import CertificateAuthority
from pki.errors import CAError, KeyMaterialError, StoreError
from pki.issued_by import issued_by
from pki.keys import PrivateKey, keys_match, load_private_key_pem, load_public_key_pem
from pki.kubeadm.certlist import CA_SPECS, CERT_SPECS, KUBEADM_CA, CASpec, CertSpec
from pki.kubeadm.expiration import is_ca_certificate
from pki.store import CERT_MODE, KEY_MODE, read_bytes

SA_KEY, SA_PUB = "sa.key", "sa.pub"


@dataclass(frozen=True, slots=True)
class TreeFile:
    """A file to copy, exactly as it is in the source (kubeadm's PKCS#1 keys stay PKCS#1)."""

    relative: str  # "etcd/server.key"
    data: bytes
    mode: int


@dataclass(frozen=True, slots=True)
class TreeCert:
    """A certificate to record in the inventory under its kubeadm base name."""

    name: str  # "etcd/server"
    ca: str  # "etcd/ca"; a CA's own name for a CA
    profile: str
    certificate: x509.Certificate
    key: PrivateKey | None  # None: an externally managed CA (its key kept elsewhere)


@dataclass(frozen=True, slots=True)
class KubeadmTree:
    source: Path
    files: tuple[TreeFile, ...]
    certificates: tuple[TreeCert, ...]

    @property
    def cas(self) -> tuple[TreeCert, ...]:
        return tuple(c for c in self.certificates if c.name == c.ca)


def read_kubeadm_tree(source: Path) -> KubeadmTree:
    """Validate the kubeadm tree at `source`; raise StoreError, KeyMaterialError or CAError on the first fault."""
    if not (source / "ca.crt").is_file():
        raise StoreError(f"{source} is not a kubeadm PKI directory: {source / 'ca.crt'} does not exist")
    files: list[TreeFile] = []
    certs: list[TreeCert] = []
    cas: dict[str, x509.Certificate] = {}
    for spec in CA_SPECS:
        loaded = _read_ca(source, spec, files)
        if loaded is not None:
            cas[spec.base_name] = loaded.certificate
            certs.append(loaded)
    for leaf in CERT_SPECS:
        cert = _read_leaf(source, leaf, cas, files)
        if cert is not None:
            certs.append(cert)
    _read_service_account_keys(source, files)
    return KubeadmTree(source, tuple(files), tuple(certs))


def _read_pair(source: Path, base: str, files: list[TreeFile]) -> tuple[x509.Certificate, PrivateKey]:
    key_rel = f"{base}.key"
    if not (source / key_rel).is_file():
        raise KeyMaterialError(f"{source / key_rel} is missing: {base}.crt has no private key beside it")
    cert = _read_cert(source, base, files)
    key_data = read_bytes(source / key_rel, what="private key")
    key = load_private_key_pem(key_data, source=str(source / key_rel))
    if not keys_match(key, cert.public_key()):  # type: ignore[arg-type]
        raise KeyMaterialError(f"{source / key_rel} does not match {base}.crt: the key belongs to another certificate")
    files.append(TreeFile(key_rel, key_data, KEY_MODE))
    return cert, key


def _read_cert(source: Path, base: str, files: list[TreeFile]) -> x509.Certificate:
    data = read_bytes(source / f"{base}.crt", what="certificate")
    try:
        cert = x509.load_pem_x509_certificate(data)
    except ValueError:
        raise StoreError(f"{source / base}.crt is not a PEM certificate") from None
    files.append(TreeFile(f"{base}.crt", data, CERT_MODE))
    return cert


def _read_ca(source: Path, spec: CASpec, files: list[TreeFile]) -> TreeCert | None:
    """A CA with its key; front-proxy-ca or etcd/ca may come without (kubeadm's external CA mode)."""
    if not (source / f"{spec.base_name}.crt").is_file():
        return None  # e.g. external etcd without its CA here: the etcd leaves are then refused
    if spec.base_name != "ca" and not (source / f"{spec.base_name}.key").is_file():
        cert = _read_cert(source, spec.base_name, files)
        if not is_ca_certificate(cert):
            raise CAError(f"{source / spec.base_name}.crt is not a CA certificate (basicConstraints)")
        return TreeCert(spec.base_name, spec.base_name, KUBEADM_CA.name, cert, None)
    cert, key = _read_pair(source, spec.base_name, files)
    try:
        CertificateAuthority.load(cert, key)
    except CAError as e:
        raise CAError(f"{source / spec.base_name}.crt: {e}") from None
    return TreeCert(spec.base_name, spec.base_name, KUBEADM_CA.name, cert, key)


def _read_leaf(
    source: Path, spec: CertSpec, cas: dict[str, x509.Certificate], files: list[TreeFile]
) -> TreeCert | None:
    if not (source / f"{spec.base_name}.crt").is_file():
        if (source / f"{spec.base_name}.key").is_file():
            raise StoreError(f"{source / spec.base_name}.key has no certificate ({spec.base_name}.crt is missing)")
        return None
    ca = cas.get(spec.ca)
    if ca is None:
        raise CAError(f"{source / spec.base_name}.crt is signed by {spec.ca}, but {spec.ca}.crt is not in {source}")
    cert, key = _read_pair(source, spec.base_name, files)
    _check_signed_by(cert, ca, f"{source / spec.base_name}.crt", spec.ca)
    return TreeCert(spec.base_name, spec.ca, spec.profile.name, cert, key)


def _check_signed_by(cert: x509.Certificate, ca: x509.Certificate, where: str, ca_name: str) -> None:
    if not issued_by(cert, ca):
        subject = ca.subject.rfc4514_string()
        raise CAError(f"{where} is not signed by {ca_name}.crt ({subject}): it belongs to another CA")
    if is_ca_certificate(cert):
        raise CAError(f"{where} is a CA certificate (CA:TRUE) where kubeadm has a leaf")


def _read_service_account_keys(source: Path, files: list[TreeFile]) -> None:
    key_path, pub_path = source / SA_KEY, source / SA_PUB
    if not key_path.is_file():
        if pub_path.is_file():
            raise KeyMaterialError(f"{pub_path} has no private key: {SA_KEY} is missing")
        return
    key_data = read_bytes(key_path, what="service-account key")
    key = load_private_key_pem(key_data, source=str(key_path))
    files.append(TreeFile(SA_KEY, key_data, KEY_MODE))
    if pub_path.is_file():
        pub_data = read_bytes(pub_path, what="service-account public key")
        if not keys_match(key, load_public_key_pem(pub_data, source=str(pub_path))):
            raise KeyMaterialError(f"{pub_path} does not match {SA_KEY}: tokens signed with one would not verify")
        files.append(TreeFile(SA_PUB, pub_data, CERT_MODE))
