"""Certificate revocation lists, built purely from the CA, the revoked entries and `now`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pki.builder import authority_key_identifier
from pki.ca import CertificateAuthority
from pki.errors import CAError
from pki.keys import signature_hash

# RFC 5280 reason names as openssl and cryptography spell them; removeFromCRL is for delta CRLs only.
REVOCATION_REASONS: dict[str, x509.ReasonFlags] = {
    r.value: r for r in x509.ReasonFlags if r is not x509.ReasonFlags.remove_from_crl
}


@dataclass(frozen=True, slots=True)
class RevokedEntry:
    serial: int
    revoked_at: dt.datetime
    reason: x509.ReasonFlags = x509.ReasonFlags.unspecified


def crl_number(now: dt.datetime) -> int:
    """Milliseconds since the epoch: grows with every CRL (RFC 5280 5.2.3) without a stored counter."""
    return int(now.timestamp() * 1000)


def build_crl(
    ca: CertificateAuthority,
    revoked: Iterable[RevokedEntry],
    *,
    now: dt.datetime,
    next_update: dt.timedelta,
    number: int | None = None,
) -> x509.CertificateRevocationList:
    """A CRL signed by `ca` (a v2 CRL with AKI and CRL number); CAError for a non-positive next_update."""
    if next_update <= dt.timedelta(0):
        raise CAError(f"CRL next update {next_update} must be positive")
    this_update = now.replace(microsecond=0)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.certificate.subject)
        .last_update(this_update)
        .next_update(this_update + next_update)
        .add_extension(x509.CRLNumber(crl_number(now) if number is None else number), critical=False)
        .add_extension(authority_key_identifier(ca.certificate), critical=False)
    )
    for entry in revoked:
        builder = builder.add_revoked_certificate(_revoked_certificate(entry))
    return builder.sign(ca.key, signature_hash(ca.key))  # type: ignore[arg-type]


def _revoked_certificate(entry: RevokedEntry) -> x509.RevokedCertificate:
    revoked = (
        x509.RevokedCertificateBuilder()
        .serial_number(entry.serial)
        .revocation_date(entry.revoked_at.replace(microsecond=0))
    )
    # RFC 5280 5.3.1: the reasonCode entry extension SHOULD be absent rather than `unspecified`.
    if entry.reason is not x509.ReasonFlags.unspecified:
        revoked = revoked.add_extension(x509.CRLReason(entry.reason), critical=False)
    return revoked.build()


def crl_pem(crl: x509.CertificateRevocationList) -> bytes:
    return crl.public_bytes(serialization.Encoding.PEM)


def crl_der(crl: x509.CertificateRevocationList) -> bytes:
    return crl.public_bytes(serialization.Encoding.DER)
