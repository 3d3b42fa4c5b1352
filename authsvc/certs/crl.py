"""Producing CRLs from the inventory for a CA of the home."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from authsvc.home.layout import pki_path
from authsvc.home.opened import Home
from pki.revocation import REVOCATION_REASONS, RevokedEntry, build_crl, crl_der, crl_pem
from pki.store import atomic_write


def current_crl(home: Home, ca_name: str = "ca") -> x509.CertificateRevocationList:
    ca = home.stores.load_ca(ca_name)
    entries = [
        RevokedEntry(
            int(r.serial, 16), r.revoked_at or r.issued_at, REVOCATION_REASONS[r.revocation_reason or "unspecified"]
        )
        for r in home.stores.inventory.revoked_for(ca_name)
    ]
    return build_crl(ca, entries, now=home.clock(), next_update=home.settings.pki.crl_next_update)


def write_crl(home: Home, ca_name: str = "ca", *, der: bool = False, path: Path | None = None) -> bytes:
    """Build the CRL, keep a copy at pki/<ca>.crl (PEM) for servers, and return the requested form."""
    crl = current_crl(home, ca_name)
    atomic_write(pki_path(home.root, ca_name, "crl"), crl_pem(crl), 0o644)
    data = crl_der(crl) if der else crl_pem(crl)
    if path is not None:
        atomic_write(path, data, 0o644)
    return data
