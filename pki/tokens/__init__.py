"""Tokens authsvc signs: kube-compatible service-account and user JWTs, their signing keys
(phased rotation), JWKS / OIDC discovery, verification and the revocation denylist.

`TokenService` (service.py) is the entry point; claims.py, kid.py, jwks.py and verify.py
are pure; signing_keys.py, keyfiles.py and ledger.py are the thin storage layer.
"""

from __future__ import annotations

from pki.tokens.config import DEFAULT_ISSUER, TokenConfig
from pki.tokens.keyfiles import SigningKeyFiles
from pki.tokens.service import IssuedToken, TokenService, VerifiedToken
from pki.tokens.signing_keys import KeyState, SigningKeyStore

__all__ = [
    "DEFAULT_ISSUER",
    "IssuedToken",
    "KeyState",
    "SigningKeyFiles",
    "SigningKeyStore",
    "TokenConfig",
    "TokenService",
    "VerifiedToken",
]
