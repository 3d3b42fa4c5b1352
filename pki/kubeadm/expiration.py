"""Expiration and renewal the way kubeadm does them: what expires when, and re-signing a leaf as it is.

`kubeadm certs check-expiration` prints two tables (certificates, then CAs) with kubeadm's
date format and apimachinery's ShortHumanDuration; `-o json` follows kubeadm's
CertificateExpirationInfo (output.kubeadm.k8s.io/v1alpha3). `kubeadm certs renew` keeps every
attribute of the certificate it renews (the existing certificate is the source of truth, not
the configuration): only the serial, the validity window and the issuer's key identifier change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509

from pki.builder import CLOCK_SKEW, new_serial
from pki.ca import CertificateAuthority
from pki.errors import CAError
from pki.keys import PublicKey, check_key_strength, signature_hash

OUTPUT_API_VERSION = "output.kubeadm.k8s.io/v1alpha3"
DEFAULT_WARN_WITHIN = dt.timedelta(days=30)


def residual_time(delta: dt.timedelta) -> str:
    """apimachinery's duration.ShortHumanDuration, which kubeadm's RESIDUAL TIME column uses."""
    seconds = int(delta.total_seconds())
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    hours = seconds // 3600
    if hours < 24:
        return f"{hours}h"
    if hours < 24 * 365:
        return f"{hours // 24}d"
    return f"{hours // 24 // 365}y"


def kubeadm_date(when: dt.datetime) -> str:
    """Go's "Jan 02, 2006 15:04 MST" in UTC, as kubeadm prints EXPIRES."""
    return when.astimezone(dt.UTC).strftime("%b %d, %Y %H:%M UTC")


@dataclass(frozen=True, slots=True)
class ExpirationEntry:
    """One row: a certificate (or CA) by kubeadm's name, when it expires and who signed it."""

    name: str
    not_after: dt.datetime | None  # None: the file is missing
    ca: str = ""  # kubeadm's CA name ("etcd-ca"); empty for a CA row
    externally_managed: bool = False  # the signing CA's key is not here (kubeadm's external CA mode)

    def residual(self, now: dt.datetime) -> dt.timedelta:
        return (self.not_after - now) if self.not_after else dt.timedelta(0)

    def expires_within(self, now: dt.datetime, within: dt.timedelta) -> bool:
        return self.not_after is not None and self.residual(now) < within

    def as_row(self, now: dt.datetime) -> dict[str, str]:
        if self.not_after is None:
            return {"name": f"!MISSING! {self.name}", "expires": "", "residual": "", "ca": "", "external": ""}
        return {
            "name": self.name,
            "expires": kubeadm_date(self.not_after),
            "residual": residual_time(self.residual(now)),
            "ca": self.ca,
            "external": "yes" if self.externally_managed else "no",
        }

    def as_dict(self, now: dt.datetime, warn_within: dt.timedelta) -> dict[str, object]:
        item: dict[str, object] = {"name": self.name, "missing": self.not_after is None}
        if self.not_after is not None:
            item["expirationDate"] = self.not_after.isoformat().replace("+00:00", "Z")
            item["residualTime"] = int(self.residual(now).total_seconds())
            item["expiringSoon"] = self.expires_within(now, warn_within)
        if self.ca:
            item["caName"] = self.ca
        item["externallyManaged"] = self.externally_managed
        return item


@dataclass(frozen=True, slots=True)
class ExpirationReport:
    certificates: tuple[ExpirationEntry, ...]
    authorities: tuple[ExpirationEntry, ...]
    now: dt.datetime

    def expiring(self, within: dt.timedelta) -> tuple[ExpirationEntry, ...]:
        return tuple(e for e in (*self.certificates, *self.authorities) if e.expires_within(self.now, within))

    def as_dict(self, warn_within: dt.timedelta = DEFAULT_WARN_WITHIN) -> dict[str, object]:
        return {
            "kind": "CertificateExpirationInfo",
            "apiVersion": OUTPUT_API_VERSION,
            "certificates": [e.as_dict(self.now, warn_within) for e in self.certificates],
            "certificateAuthorities": [e.as_dict(self.now, warn_within) for e in self.authorities],
        }


def build_report(
    certificates: Iterable[ExpirationEntry], authorities: Iterable[ExpirationEntry], now: dt.datetime
) -> ExpirationReport:
    """Rows sorted by name, as kubeadm lists them."""
    return ExpirationReport(
        tuple(sorted(certificates, key=lambda e: e.name)), tuple(sorted(authorities, key=lambda e: e.name)), now
    )


def certificate_lifetime(cert: x509.Certificate) -> dt.timedelta:
    """How long `cert` was made to live, without the backdating our builder (and kubeadm) adds."""
    span = cert.not_valid_after_utc - cert.not_valid_before_utc
    return span - CLOCK_SKEW if span > 2 * CLOCK_SKEW else span


def renewal_window(
    cert: x509.Certificate, ca: CertificateAuthority, *, now: dt.datetime, lifetime: dt.timedelta | None = None
) -> tuple[dt.datetime, dt.datetime]:
    """(notBefore, notAfter) of the renewal; CAError when the CA would expire first (renew the CA first)."""
    span = lifetime if lifetime is not None else certificate_lifetime(cert)
    not_before = (now - CLOCK_SKEW).replace(microsecond=0)
    not_after = (now + span).replace(microsecond=0)
    if not_after > ca.not_after:
        ca_name = ca.certificate.subject.rfc4514_string()
        raise CAError(
            f"CA {ca_name} expires at {ca.not_after:%Y-%m-%dT%H:%M:%SZ}, before the renewed certificate would "
            f"({not_after:%Y-%m-%dT%H:%M:%SZ}): renew the CA first (authsvc does not shorten a renewal to fit)"
        )
    return not_before, not_after


def renew_certificate(
    cert: x509.Certificate, ca: CertificateAuthority, *, now: dt.datetime, lifetime: dt.timedelta | None = None
) -> x509.Certificate:
    """Re-sign `cert` with its own key and every extension kept; new serial, new validity window.

    `lifetime` defaults to the certificate's own. Raises CAError when `cert` is a CA or when the
    CA would expire before the renewed certificate, PolicyError when the key is too weak to keep.
    """
    if is_ca_certificate(cert):
        raise CAError(f"{cert.subject.rfc4514_string()} is a CA: renew renews leaves; rotate a CA instead")
    public_key: PublicKey = cert.public_key()  # type: ignore[assignment]
    check_key_strength(public_key)
    not_before, not_after = renewal_window(cert, ca, now=now, lifetime=lifetime)
    builder = (
        x509.CertificateBuilder()
        .subject_name(cert.subject)
        .issuer_name(ca.issuer.name)
        .public_key(public_key)
        .serial_number(new_serial())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    for extension in cert.extensions:
        if not isinstance(extension.value, x509.AuthorityKeyIdentifier):
            builder = builder.add_extension(extension.value, critical=extension.critical)
    authority_key_id = ca.issuer.authority_key_id  # derived once per CA, not per renewal
    assert authority_key_id is not None  # a CertificateAuthority always has its certificate
    builder = builder.add_extension(authority_key_id, critical=False)
    return builder.sign(ca.key, signature_hash(ca.key))  # type: ignore[arg-type]


def is_ca_certificate(cert: x509.Certificate) -> bool:
    """basicConstraints CA:TRUE (a certificate without the extension is no CA)."""
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False
