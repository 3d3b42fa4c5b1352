"""Forged JWTs: what an attacker sends to the webhook, built with PyJWT's algorithms.

PyJWT's `encode` refuses to build most of these (HMAC with a public key, `alg` that does not
match the key, a `crit` it does not know): the compact form is framed here from a header,
a payload and a signature, and every signature is made by PyJWT's algorithm objects.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import HMACAlgorithm
from jwt.utils import base64url_encode

Claims = dict[str, Any]
Sign = Callable[[bytes], bytes]


def compact(header: Mapping[str, Any], payload: Mapping[str, Any] | bytes, sign: Sign) -> str:
    """header.payload.signature; `payload` bytes are taken as the JSON text itself."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signing_input = base64url_encode(json.dumps(header).encode()) + b"." + base64url_encode(body)
    return (signing_input + b"." + base64url_encode(sign(signing_input))).decode()


def unsigned(_: bytes) -> bytes:
    return b""


@dataclass(frozen=True)
class Signer:
    """An issuer's signing key, its algorithm and kid, and the claims of a valid token of its own."""

    algorithm: str
    key: Any  # a cryptography private key
    kid: str
    claims: Claims = field(default_factory=dict)

    def sign_input(self, message: bytes) -> bytes:
        signature: bytes = jwt.get_algorithm_by_name(self.algorithm).sign(message, self.key)
        return signature

    def header(self, **changes: Any) -> dict[str, Any]:
        """{"alg", "typ", "kid"} with `changes` applied; a change to None removes the member."""
        header = {"alg": self.algorithm, "typ": "JWT", "kid": self.kid, **changes}
        return {k: v for k, v in header.items() if v is not None}

    def token(self, claims: Mapping[str, Any] | None = None, *, drop: tuple[str, ...] = (), **header: Any) -> str:
        """A token signed with this key: the valid claims updated with `claims`, minus `drop`."""
        payload = {k: v for k, v in {**self.claims, **(claims or {})}.items() if k not in drop}
        return compact(self.header(**header), payload, self.sign_input)

    def public_pem(self) -> bytes:
        pem: bytes = self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return pem

    def hmac_with_public_key(self, claims: Mapping[str, Any] | None = None) -> str:
        """The classic key-confusion forgery: HS256 keyed with the verifier's own public key."""
        hmac = HMACAlgorithm(HMACAlgorithm.SHA256)
        payload = {**self.claims, **(claims or {})}
        return compact(self.header(alg="HS256"), payload, lambda m: hmac.sign(m, self.public_pem()))

    def jwk(self) -> dict[str, Any]:
        public: dict[str, Any] = json.loads(jwt.get_algorithm_by_name(self.algorithm).to_jwk(self.key.public_key()))
        return {**public, "kid": self.kid, "alg": self.algorithm}


def unverified_claims(token: str) -> Claims:
    """A token's claims, read without verifying (to re-sign them changed)."""
    claims: Claims = jwt.decode(token, options={"verify_signature": False})
    return claims


def now() -> int:
    return int(time.time())


def tamper_payload(token: str, **changes: Any) -> str:
    """The token with its payload replaced (changed claims) and the original signature kept."""
    header, _, signature = token.split(".")
    payload = base64url_encode(json.dumps({**unverified_claims(token), **changes}).encode()).decode()
    return f"{header}.{payload}.{signature}"


def tamper_signature(token: str) -> str:
    """One character of the signature changed (the middle one: its bits all count)."""
    head, _, signature = token.rpartition(".")
    middle = len(signature) // 2
    flipped = "A" if signature[middle] != "A" else "B"
    return f"{head}.{signature[:middle]}{flipped}{signature[middle + 1 :]}"
