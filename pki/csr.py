"""Certificate signing requests: parse, verify, and reduce to what we take from them."""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtensionOID

from pki.errors import PolicyError
from pki.keys import PrivateKey, PublicKey, signature_hash
from pki.names import SubjectAltNames
from pki.profiles import Profile


def load_csr(data: bytes) -> x509.CertificateSigningRequest:
    """Parse a PEM (or DER) CSR and verify its self-signature; PolicyError says why it is refused."""
    csr = parse_csr(data)
    verify_csr_signature(csr)
    return csr


def parse_csr(data: bytes) -> x509.CertificateSigningRequest:
    """Parse a PEM (or DER) PKCS#10 request, without checking its signature (`verify_csr_signature`)."""
    try:
        return x509.load_pem_x509_csr(data) if data.lstrip().startswith(b"-----") else x509.load_der_x509_csr(data)
    except (ValueError, x509.InvalidVersion) as e:  # InvalidVersion (a version other than 1) is no ValueError
        raise PolicyError("not a certificate signing request (expected PEM or DER PKCS#10)") from e


def verify_csr_signature(csr: x509.CertificateSigningRequest) -> None:
    """PolicyError unless the request is signed by the key it carries (proof of possession)."""
    try:
        valid = csr.is_signature_valid
    except (UnsupportedAlgorithm, ValueError, TypeError) as e:  # a key or signature algorithm we cannot check
        raise PolicyError(f"CSR signature cannot be checked: {e}") from e
    if not valid:
        raise PolicyError("CSR signature is invalid: the request was altered or not signed by its key")


def csr_public_key(csr: x509.CertificateSigningRequest) -> PublicKey:
    try:
        key = csr.public_key()
    except (UnsupportedAlgorithm, ValueError) as e:
        raise PolicyError(f"CSR public key is not supported: {e}") from e
    return key  # type: ignore[return-value]


def csr_extensions(csr: x509.CertificateSigningRequest) -> x509.Extensions:
    """The requested extensions; a malformed or duplicated one refuses the whole request."""
    try:
        return csr.extensions
    except ValueError as e:  # cryptography raises ValueError subclasses for bad or duplicate extensions
        raise PolicyError(f"CSR extensions cannot be parsed: {e}") from e


def csr_sans(csr: x509.CertificateSigningRequest) -> SubjectAltNames:
    return SubjectAltNames.from_certificate_like(csr_extensions(csr))


def refuse_ca_request(csr: x509.CertificateSigningRequest) -> None:
    """Extensions are never copied from a CSR; asking for CA:TRUE is refused outright."""
    try:
        constraints = csr_extensions(csr).get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return
    if constraints.ca:
        raise PolicyError("CSR asks for CA:TRUE: this CA does not sign other CAs through requests")


# Extensions a request may carry: the names and usages it asks for, and CA:FALSE (openssl's
# default req_extensions add it). Each is read, never copied: the certificate's extensions come
# from its profile and the checked SANs.
REQUESTABLE_EXTENSIONS = frozenset(
    {
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.BASIC_CONSTRAINTS,
    }
)


def refuse_unrequestable_extensions(csr: x509.CertificateSigningRequest, profile: Profile) -> None:
    """PolicyError for an extension outside REQUESTABLE_EXTENSIONS, a key usage only a CA has,
    or an extended key usage that `profile` does not grant. (CA:TRUE: `refuse_ca_request`.)"""
    for extension in csr_extensions(csr):
        value = extension.value
        if extension.oid not in REQUESTABLE_EXTENSIONS:
            name = getattr(extension.oid, "_name", "unknownOID")
            raise PolicyError(f"CSR asks for the extension {name} ({extension.oid.dotted_string}), which is not signed")
        if isinstance(value, x509.KeyUsage) and (value.key_cert_sign or value.crl_sign):
            raise PolicyError("CSR asks for keyCertSign or cRLSign: only a CA signs certificates or CRLs")
        if isinstance(value, x509.ExtendedKeyUsage):
            extra = [oid for oid in value if oid not in profile.ext_key_usages]
            if extra:
                names = ", ".join(getattr(oid, "_name", oid.dotted_string) for oid in extra)
                raise PolicyError(
                    f"CSR asks for extended key usage {names}, which a {profile.name} certificate does not have"
                )


def build_csr(
    key: PrivateKey, subject: x509.Name, sans: SubjectAltNames | None = None
) -> x509.CertificateSigningRequest:
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if sans:
        builder = builder.add_extension(sans.as_extension(), critical=False)
    return builder.sign(key, signature_hash(key))  # type: ignore[arg-type]


def csr_pem(csr: x509.CertificateSigningRequest) -> bytes:
    return csr.public_bytes(Encoding.PEM)
