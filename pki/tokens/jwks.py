"""Publishing verification keys: the JWKS, the OIDC discovery document and the PEM bundle.

Shapes follow kube-apiserver (pkg/serviceaccount/openidmetadata.go, pkg/routes/
openidmetadata.go): each JWK carries `use: sig`, `kty`, `kid`, `alg` and the public
numbers; discovery names the issuer, the jwks_uri, `response_types_supported: [id_token]`,
`subject_types_supported: [public]` and the sorted signing algorithms of the published keys.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from pki.keys import public_key_pem
from pki.tokens.verify import VerificationKey

JWKS_PATH = "/openid/v1/jwks"
DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_MEDIA_TYPE = "application/jwk-set+json"  # RFC 7517 section 8.5.1, as kube-apiserver serves it


def discovery_path(issuer: str) -> str:
    """The path of an issuer's discovery document on its host, `{issuer}/.well-known/openid-configuration`
    with a trailing slash of the issuer dropped, as kube-apiserver's JWT authenticator (go-oidc) builds it."""
    return urlsplit(issuer).path.rstrip("/") + DISCOVERY_PATH


def public_jwk(key: VerificationKey) -> dict[str, Any]:
    if isinstance(key.key, rsa.RSAPublicKey):
        numbers = RSAAlgorithm.to_jwk(key.key, as_dict=True)
        return {"use": "sig", "kty": "RSA", "kid": key.kid, "alg": key.algorithm, "n": numbers["n"], "e": numbers["e"]}
    if isinstance(key.key, ec.EllipticCurvePublicKey):
        numbers = ECAlgorithm.to_jwk(key.key, as_dict=True)
        return {
            "use": "sig",
            "kty": "EC",
            "kid": key.kid,
            "crv": numbers["crv"],
            "alg": key.algorithm,
            "x": numbers["x"],
            "y": numbers["y"],
        }
    raise TypeError(f"key {key.kid} is neither RSA nor EC")


def jwks_document(keys: Iterable[VerificationKey]) -> dict[str, Any]:
    return {"keys": [public_jwk(k) for k in keys]}


def discovery_document(issuer: str, jwks_uri: str, keys: Iterable[VerificationKey]) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "jwks_uri": jwks_uri,
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": sorted({k.algorithm for k in keys}),
    }


def public_keys_pem(keys: Iterable[VerificationKey]) -> bytes:
    """The bundle for kube-apiserver's --service-account-key-file (every key it must accept)."""
    return b"".join(public_key_pem(k.key) for k in keys)
