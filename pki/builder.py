"""Pure certificate builders: a certificate is a function of key, profile, names and `now`.

Nothing here reads or writes files or the database.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from pki.errors import CAError
from pki.keys import PrivateKey, PublicKey, check_key_strength, signature_hash
from pki.names import SubjectAltNames
from pki.profiles import Profile

# Clocks of the machines that check our certificates drift; a certificate that is valid
# "from now" is rejected by a client a few seconds behind. Backdate a little.
CLOCK_SKEW = dt.timedelta(minutes=5)

# RFC 5280 4.1.2.2 allows at most 20 octets for a positive serial, i.e. 159 bits. The top bit
# is always set so every serial is exactly 159 bits long (158 random: CA/B asks for >= 64,
# issue 2 for >= 128) and its DER encoding never needs a leading zero octet.
SERIAL_BITS = 159


def new_serial() -> int:
    """A fresh random positive serial of exactly SERIAL_BITS bits, from the OS CSPRNG."""
    return secrets.randbits(SERIAL_BITS - 1) | (1 << (SERIAL_BITS - 1))


@dataclass(frozen=True, slots=True)
class Issuer:
    """What a certificate is signed by: the CA's name, key and certificate (None when self-signed)."""

    name: x509.Name
    key: PrivateKey
    certificate: x509.Certificate | None = None
    # Derived once: every certificate this issuer signs carries it.
    authority_key_id: x509.AuthorityKeyIdentifier | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        aki = None if self.certificate is None else authority_key_identifier(self.certificate)
        object.__setattr__(self, "authority_key_id", aki)

    @property
    def not_after(self) -> dt.datetime | None:
        return None if self.certificate is None else self.certificate.not_valid_after_utc


def validity_window(
    now: dt.datetime, ttl: dt.timedelta, issuer_not_after: dt.datetime | None = None
) -> tuple[dt.datetime, dt.datetime]:
    """(notBefore, notAfter): backdated by CLOCK_SKEW, never past the issuer's notAfter.

    Raises CAError when the lifetime is not positive or the issuer has already expired.
    """
    if ttl <= dt.timedelta(0):
        raise CAError(f"certificate lifetime {ttl} must be positive")
    not_before = now - CLOCK_SKEW
    not_after = now + ttl
    if issuer_not_after is not None and not_after > issuer_not_after:
        not_after = issuer_not_after
    if not_after <= now:
        raise CAError(f"the issuing CA expired at {issuer_not_after:%Y-%m-%dT%H:%M:%SZ}: rotate the CA first")
    return not_before.replace(microsecond=0), not_after.replace(microsecond=0)


def key_usage_for(profile: Profile, public_key: PublicKey) -> x509.KeyUsage:
    is_rsa = isinstance(public_key, rsa.RSAPublicKey)
    return x509.KeyUsage(
        digital_signature=profile.digital_signature,
        content_commitment=False,
        key_encipherment=is_rsa,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=profile.is_ca,
        crl_sign=profile.is_ca,
        encipher_only=False,
        decipher_only=False,
    )


def build_certificate(
    *,
    subject: x509.Name,
    public_key: PublicKey,
    issuer: Issuer,
    profile: Profile,
    now: dt.datetime,
    ttl: dt.timedelta | None = None,
    sans: SubjectAltNames | None = None,
    serial: int | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> x509.Certificate:
    """Build and sign one certificate. Explicit `not_before`/`not_after` are for renewals that keep a window.

    Raises PolicyError for a weak or unsupported key, CAError for an expired issuer.
    """
    check_key_strength(public_key)
    window = validity_window(now, profile.default_ttl if ttl is None else ttl, issuer.not_after)
    start = not_before or window[0]
    end = min(not_after, window[1]) if not_after else window[1]
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.name)
        .public_key(public_key)
        .serial_number(new_serial() if serial is None else serial)
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=profile.is_ca, path_length=profile.path_length), critical=True)
        .add_extension(key_usage_for(profile, public_key), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if profile.ext_key_usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(profile.ext_key_usages)), critical=False)
    # RFC 5280 4.2.1.1: AKI in every certificate except a self-signed one, where it may be left out.
    if issuer.authority_key_id is not None:
        builder = builder.add_extension(issuer.authority_key_id, critical=False)
    if sans:
        builder = builder.add_extension(sans.as_extension(), critical=False)
    return builder.sign(issuer.key, signature_hash(issuer.key))  # type: ignore[arg-type]


def authority_key_identifier(ca_cert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    """The AKI pointing at `ca_cert`: its own SKI when it has one (verifiers match them byte for byte)."""
    try:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key())  # type: ignore[arg-type]
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
