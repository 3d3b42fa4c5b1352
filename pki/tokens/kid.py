"""Key ids and algorithms of token signing keys, computed the way kube-apiserver computes them.

kube-apiserver (pkg/serviceaccount/jwt.go, keyIDFromPublicKey) names a key by the
unpadded base64url SHA-256 of its DER SubjectPublicKeyInfo, so a token signed by either
system carries the same `kid` for the same key. Algorithms follow
pkg/serviceaccount/openidmetadata.go (algorithmFromPublicKey): RS256 for any RSA key,
ES256/ES384 for P-256/P-384.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pki.errors import KeyMaterialError
from pki.keys import KeyType, PrivateKey, PublicKey, generate_private_key, spki_der

# What a new signing key is for each configurable algorithm: RSA-2048 is what kubeadm
# generates for sa.key; P-256 is the smallest curve kube-apiserver signs with.
KEY_TYPE_FOR_ALGORITHM: dict[str, KeyType] = {"RS256": KeyType.RSA_2048, "ES256": KeyType.EC_P256}
_CURVE_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384"}


def kid_for(public_key: PublicKey) -> str:
    """base64url(SHA-256(DER SubjectPublicKeyInfo)) without padding."""
    digest = hashlib.sha256(spki_der(public_key)).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def algorithm_for(public_key: PublicKey) -> str:
    """The one JWS algorithm a key signs with; raise KeyMaterialError for keys kube cannot use."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return "RS256"
    if isinstance(public_key, ec.EllipticCurvePublicKey) and public_key.curve.name in _CURVE_ALGORITHMS:
        return _CURVE_ALGORITHMS[public_key.curve.name]
    raise KeyMaterialError(
        f"a {type(public_key).__name__} key cannot sign service-account tokens: use RSA or ECDSA P-256/P-384"
    )


def new_signing_key(algorithm: str) -> PrivateKey:
    """A fresh private key for `algorithm` (RS256 → RSA-2048, ES256 → P-256)."""
    try:
        return generate_private_key(KEY_TYPE_FOR_ALGORITHM[algorithm])
    except KeyError:
        known = ", ".join(KEY_TYPE_FOR_ALGORITHM)
        raise KeyMaterialError(f"unknown token signing algorithm {algorithm!r} (one of: {known})") from None
