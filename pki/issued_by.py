"""Whether one certificate was signed by another: the one question rotation, import and audit ask."""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import InvalidSignature


def issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    """True when `ca`'s subject is `cert`'s issuer and `ca`'s key made `cert`'s signature.

    Never raises: a name mismatch (ValueError), a key type that cannot sign certificates
    (TypeError) and a bad signature all mean "not issued by". A rolled-over CA keeps its
    subject, so the signature is what tells the old CA's leaves from the new one's.
    """
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
