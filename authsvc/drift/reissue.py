"""Reissuing a drifted certificate so that it matches the settings.

The new certificate takes what the settings shape (SANs, the node name in the subject, the
lifetime, the key type) from the settings and everything else from the old one (its subject's
other attributes, such as admin.conf's group). The key is kept unless the key type changed; then
a new key of the configured type is made and written before the certificate (kubeconfigs: both
embedded). Building is pure (`build_reissue`); `reissued_files` says what to write.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from authsvc.drift.detect import Drift, target_sans
from authsvc.drift.expected import Expected
from authsvc.kubeconfig.documents import b64, current_entries, dump_kubeconfig, load_kubeconfig
from pki.keys import PrivateKey, PublicKey, generate_private_key, private_key_to_pem
from pki.names import SubjectAltNames
from pki.store import CERT_MODE, KEY_MODE, PendingFile, certs_to_pem, load_certificates

if TYPE_CHECKING:
    from pki.ca import CertificateAuthority


@dataclass(frozen=True, slots=True)
class Reissue:
    expected: Expected
    old: x509.Certificate
    new: x509.Certificate
    key: PrivateKey | None  # a new key (the key type changed); None: the old key is kept
    drifts: tuple[Drift, ...]

    @property
    def changed(self) -> str:
        """`SANs, key type`: what the reissue changes, for the operator."""
        labels = {"sans": "SANs", "subject": "subject", "lifetime": "lifetime", "key-type": "key type (new key)"}
        return ", ".join(dict.fromkeys(labels[d.aspect] for d in self.drifts))


def build_reissue(
    expected: Expected, old: x509.Certificate, drifts: Sequence[Drift], ca: CertificateAuthority, *, now: dt.datetime
) -> Reissue:
    """The certificate that matches `expected`, signed by `ca` now (CAError/PolicyError from the builder)."""
    rekey = any(d.aspect == "key-type" for d in drifts)
    key = generate_private_key(expected.key_type.value) if rekey else None
    public: PublicKey = key.public_key() if key is not None else old.public_key()  # type: ignore[assignment]
    sans = target_sans(expected, old) or SubjectAltNames.from_certificate_like(old.extensions)
    new = ca.issue(
        subject=_subject(old.subject, expected),
        public_key=public,
        profile=expected.profile,
        now=now,
        ttl=expected.lifetime.value,
        sans=sans or None,
    )
    return Reissue(expected, old, new, key, tuple(drifts))


def _subject(old: x509.Name, expected: Expected) -> x509.Name:
    """The old subject, with the CN the settings give (its other attributes, in their order, kept)."""
    if expected.common_name is None:
        return old
    cn = expected.common_name.value
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, cn) if a.oid == NameOID.COMMON_NAME else a for a in old]
    return x509.Name(attributes)


def reissued_files(reissue: Reissue) -> list[PendingFile]:
    """The files to write for it: the key (when new) before the certificate, a chain after the
    certificate kept; for a kubeconfig, the whole file with the new certificate (and key) embedded."""
    path, cert_pem = reissue.expected.path, reissue.new.public_bytes(Encoding.PEM)
    key_pem = private_key_to_pem(reissue.key) if reissue.key is not None else None  # in clear: see keys_at_rest
    if reissue.expected.in_kubeconfig:
        config = load_kubeconfig(path)
        _, user = current_entries(config, path)
        user["client-certificate-data"] = b64(cert_pem)
        if key_pem is not None:
            user["client-key-data"] = b64(key_pem)
        return [PendingFile(path, dump_kubeconfig(config), KEY_MODE)]
    rest = load_certificates(path)[1:]
    files = [PendingFile(key_path(path), key_pem, KEY_MODE)] if key_pem is not None else []
    return [*files, PendingFile(path, cert_pem + certs_to_pem(rest), CERT_MODE)]


def key_path(cert_path: Path) -> Path:
    return cert_path.with_suffix(".key")


def replaced_paths(reissue: Reissue) -> list[Path]:
    """What a backup of the reissue must hold."""
    path = reissue.expected.path
    return [path] if reissue.expected.in_kubeconfig or reissue.key is None else [key_path(path), path]


__all__ = ["Reissue", "build_reissue", "reissued_files", "replaced_paths"]
