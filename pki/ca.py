"""Certificate authorities: create a root or an intermediate, load one, sign with it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from cryptography import x509

from pki.builder import Issuer, build_certificate
from pki.errors import CAError
from pki.keys import KeyType, PrivateKey, PublicKey, generate_private_key, keys_match
from pki.names import SubjectAltNames, common_name_subject
from pki.profiles import INTERMEDIATE_CA, ROOT_CA, Profile


@dataclass(frozen=True, slots=True)
class CertificateAuthority:
    """A CA's certificate and key, plus the certificates above it (empty for a root)."""

    certificate: x509.Certificate
    key: PrivateKey
    chain: tuple[x509.Certificate, ...] = ()
    # Derived once, used for every certificate signed: the signing identity, and the RFC 4514
    # form of the subject that every inventory record names as its issuer.
    issuer: Issuer = field(init=False, repr=False, compare=False)
    subject_text: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "issuer", Issuer(self.certificate.subject, self.key, self.certificate))
        object.__setattr__(self, "subject_text", self.certificate.subject.rfc4514_string())

    @classmethod
    def create_root(
        cls,
        common_name: str,
        *,
        now: dt.datetime,
        key: PrivateKey | None = None,
        key_type: KeyType | str = KeyType.EC_P256,
        ttl: dt.timedelta | None = None,
        profile: Profile = ROOT_CA,
        subject: x509.Name | None = None,
        sans: SubjectAltNames | None = None,
    ) -> CertificateAuthority:
        ca_key = key or generate_private_key(key_type)
        name = subject or common_name_subject(common_name)
        cert = build_certificate(
            subject=name,
            public_key=ca_key.public_key(),
            issuer=Issuer(name, ca_key),
            profile=profile,
            now=now,
            ttl=ttl,
            sans=sans,
        )
        return cls(cert, ca_key)

    def create_intermediate(
        self,
        common_name: str,
        *,
        now: dt.datetime,
        key: PrivateKey | None = None,
        key_type: KeyType | str = KeyType.EC_P256,
        ttl: dt.timedelta | None = None,
    ) -> CertificateAuthority:
        self._check_can_sign_ca()
        child_key = key or generate_private_key(key_type)
        cert = self.issue(
            subject=common_name_subject(common_name),
            public_key=child_key.public_key(),
            profile=INTERMEDIATE_CA,
            now=now,
            ttl=ttl,
        )
        return CertificateAuthority(cert, child_key, (self.certificate, *self.chain))

    @classmethod
    def load(
        cls, certificate: x509.Certificate, key: PrivateKey, chain: tuple[x509.Certificate, ...] = ()
    ) -> CertificateAuthority:
        """Adopt an existing CA after checking that it is one and that the key is its own."""
        subject = certificate.subject.rfc4514_string()
        if not keys_match(key, certificate.public_key()):  # type: ignore[arg-type]
            raise CAError(f"CA {subject}: the private key does not match the certificate")
        try:
            constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            raise CAError(f"CA {subject}: certificate has no basicConstraints (not a CA)") from None
        if not constraints.ca:
            raise CAError(f"CA {subject}: certificate is not a CA (basicConstraints CA:FALSE)")
        try:
            usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            usage = None
        if usage is not None and not usage.key_cert_sign:
            raise CAError(f"CA {subject}: keyUsage lacks keyCertSign, so verifiers would reject what it signs")
        return cls(certificate, key, chain)

    @property
    def intermediates(self) -> tuple[x509.Certificate, ...]:
        """What a leaf of this CA presents after itself: this CA and those above it, except the root."""
        return (self.certificate, *self.chain)[:-1] if self.chain else ()

    @property
    def root(self) -> x509.Certificate:
        """The trust anchor: the last certificate of the chain (this one for a root CA)."""
        return self.chain[-1] if self.chain else self.certificate

    @property
    def not_after(self) -> dt.datetime:
        return self.certificate.not_valid_after_utc

    def issue(
        self,
        *,
        subject: x509.Name,
        public_key: PublicKey,
        profile: Profile,
        now: dt.datetime,
        ttl: dt.timedelta | None = None,
        sans: SubjectAltNames | None = None,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        serial: int | None = None,
    ) -> x509.Certificate:
        """Sign a certificate for `public_key`. Policy checks happen before this call, not in it."""
        return build_certificate(
            subject=subject,
            public_key=public_key,
            issuer=self.issuer,
            profile=profile,
            now=now,
            ttl=ttl,
            sans=sans,
            serial=serial,
            not_before=not_before,
            not_after=not_after,
        )

    def _check_can_sign_ca(self) -> None:
        constraints = self.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
        if constraints.path_length == 0:
            raise CAError(f"CA {self.certificate.subject.rfc4514_string()} has pathlen 0: it cannot sign another CA")
