"""What may be said about a secret in logs: a short prefix of its SHA-256, never the secret."""

from __future__ import annotations

import hashlib

# 12 hex digits (48 bits): enough to tell tokens apart in an audit trail, useless to guess one.
FINGERPRINT_HEX = 12


def token_digest(token: str) -> bytes:
    """SHA-256 of the token's UTF-8 bytes: the cache key and the source of its fingerprint."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def fingerprint(digest: bytes) -> str:
    """The first 12 hex digits of a token's SHA-256 (give it `token_digest(token)`)."""
    return digest[: FINGERPRINT_HEX // 2].hex()


def token_fingerprint(token: str) -> str:
    return fingerprint(token_digest(token))
