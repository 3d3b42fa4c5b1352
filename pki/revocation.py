"""Certificate revocation lists, built purely from the CA, the revoked entries and `now`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pki.ca import CertificateAuthority
from pki.keys import signature_hash


@dataclass(frozen=True, slots=True)
class RevokedEntry:
    serial: int
    revoked_at: dt.datetime
    reason: x509.ReasonFlags = x509.ReasonFlags.unspecified


def build_crl(
    ca: CertificateAuthority,
    revoked: Iterable[RevokedEntry],
    *,
    now: dt.datetime,
    next_update: dt.timedelta,
) -> x509.CertificateRevocationList:
    """A CRL signed by `ca`. Its number grows with time, so a newer CRL always has a larger one."""
    this_update = now.replace(microsecond=0)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.certificate.subject)
        .last_update(this_update)
        .next_update(this_update + next_update)
        .add_extension(x509.CRLNumber(int(this_update.timestamp())), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    for entry in revoked:
        revoked_cert = (
            x509.RevokedCertificateBuilder()
            .serial_number(entry.serial)
            .revocation_date(entry.revoked_at.replace(microsecond=0))
            .add_extension(x509.CRLReason(entry.reason), critical=False)
            .build()
        )
        builder = builder.add_revoked_certificate(revoked_cert)
    return builder.sign(ca.key, signature_hash(ca.key))  # type: ignore[arg-type]


def crl_pem(crl: x509.CertificateRevocationList) -> bytes:
    return crl.public_bytes(serialization.Encoding.PEM)


def crl_der(crl: x509.CertificateRevocationList) -> bytes:
    return crl.public_bytes(serialization.Encoding.DER)
