"""CRLs built by the library: signed by the CA, listing what was revoked, as openssl reads them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509

from pki.ca import CertificateAuthority
from pki.errors import CAError
from pki.revocation import RevokedEntry, build_crl, crl_der, crl_pem
from tests.pki.conftest import run_openssl, write_pem


def test_crl_is_signed_by_its_ca_and_lists_entries(
    root_ca: CertificateAuthority, other_ca: CertificateAuthority, now: dt.datetime
) -> None:
    entries = [
        RevokedEntry(0xABC, now, x509.ReasonFlags.key_compromise),
        RevokedEntry(0xDEF, now),  # unspecified: RFC 5280 wants no reasonCode extension at all
    ]
    crl = build_crl(root_ca, entries, now=now, next_update=dt.timedelta(days=7))
    assert crl.is_signature_valid(root_ca.certificate.public_key())  # type: ignore[arg-type]
    assert not crl.is_signature_valid(other_ca.certificate.public_key())  # type: ignore[arg-type]
    assert crl.next_update_utc == now + dt.timedelta(days=7)
    compromised = crl.get_revoked_certificate_by_serial_number(0xABC)
    assert compromised is not None
    assert (
        compromised.extensions.get_extension_for_class(x509.CRLReason).value.reason is x509.ReasonFlags.key_compromise
    )
    unspecified = crl.get_revoked_certificate_by_serial_number(0xDEF)
    assert unspecified is not None and len(unspecified.extensions) == 0
    assert crl.get_revoked_certificate_by_serial_number(0x123) is None
    assert x509.load_der_x509_crl(crl_der(crl)) == crl


def test_crl_numbers_grow(root_ca: CertificateAuthority, now: dt.datetime) -> None:
    def number(at: dt.datetime) -> int:
        crl = build_crl(root_ca, [], now=at, next_update=dt.timedelta(days=1))
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number

    assert number(now + dt.timedelta(milliseconds=1)) > number(now)


def test_next_update_must_be_positive(root_ca: CertificateAuthority, now: dt.datetime) -> None:
    with pytest.raises(CAError, match="must be positive"):
        build_crl(root_ca, [], now=now, next_update=dt.timedelta(0))


@pytest.mark.openssl
def test_openssl_checks_the_crl_signature(
    root_ca: CertificateAuthority, other_ca: CertificateAuthority, now: dt.datetime, openssl: Path, tmp_path: Path
) -> None:
    crl_file = tmp_path / "ca.crl"
    crl_file.write_bytes(crl_pem(build_crl(root_ca, [RevokedEntry(0xABC, now)], now=now, next_update=dt.timedelta(1))))
    ok = run_openssl(
        openssl, "crl", "-in", crl_file, "-noout", "-CAfile", write_pem(tmp_path / "ca.crt", root_ca.certificate)
    )
    assert "verify OK" in ok.stderr + ok.stdout
    bad = run_openssl(
        openssl, "crl", "-in", crl_file, "-noout", "-CAfile", write_pem(tmp_path / "o.crt", other_ca.certificate)
    )
    assert "verify failure" in bad.stderr + bad.stdout  # openssl crl exits 0 either way: read what it says
