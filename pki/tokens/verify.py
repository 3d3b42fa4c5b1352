"""Verifying a token against a keyring: the key is chosen by `kid`, the algorithm comes
from the key (never from the token), and every claim check is a small function.

PyJWT parses the token and checks the signature and `iss`; the time checks run here
against the injected clock (PyJWT reads the system clock), and the audience check here
because a token without `aud` means kube-apiserver's own audiences, as in kube-apiserver.
`none` and HMAC never verify: a key only accepts the one asymmetric algorithm it signs with.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from jwt.utils import base64url_decode

from pki.errors import (
    BadSignature,
    DisallowedAlgorithm,
    ExpiredToken,
    ImmatureToken,
    KeyMaterialError,
    MalformedToken,
    MissingClaim,
    UnknownKey,
    WrongAudience,
    WrongIssuer,
)
from pki.keys import PublicKey, load_public_key_pem
from pki.tokens.kid import algorithm_for, kid_for
from pki.tokens.signing_keys import KeyState, SigningKeyRecord

ALLOWED_ALGORITHMS = frozenset({"RS256", "ES256", "ES384"})
MAX_TOKEN_LENGTH = 16 * 1024

# Signature, `iss` and required claims in PyJWT; times and audience below (injected clock).
_DECODER = jwt.PyJWT(
    options={
        "verify_exp": False,
        "verify_nbf": False,
        "verify_iat": False,
        "verify_aud": False,
        "require": ["iss", "sub", "exp"],
    }
)


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A public key loaded once, with the only algorithm it is accepted with."""

    kid: str
    algorithm: str
    key: PublicKey
    state: KeyState

    @classmethod
    def from_record(cls, record: SigningKeyRecord) -> VerificationKey:
        key = load_public_key_pem(record.public_pem, source=f"signing key {record.kid}")
        if kid_for(key) != record.kid or algorithm_for(key) != record.algorithm:
            raise KeyMaterialError(f"signing key {record.kid} in the inventory does not match its public key")
        return cls(record.kid, record.algorithm, key, record.state)


@dataclass(frozen=True, slots=True)
class Expectations:
    """What a token must satisfy besides its signature."""

    issuers: frozenset[str]
    # The token must name at least one of these audiences.
    audiences: frozenset[str]
    # What a token without `aud` is taken to name (kube-apiserver's --api-audiences).
    implicit_audiences: tuple[str, ...]
    leeway: dt.timedelta


@dataclass(frozen=True, slots=True)
class Verified:
    claims: dict[str, Any]
    key: VerificationKey
    audiences: tuple[str, ...]


def verify_signed(token: str, keys: Mapping[str, VerificationKey], expect: Expectations, now: dt.datetime) -> Verified:
    """Check signature, issuer, times and audience; raise TokenRejected naming the first failure."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise MalformedToken(f"token is longer than {MAX_TOKEN_LENGTH} bytes")
    claims, key = _decode(token, candidate_keys(read_header(token), keys), expect.issuers)
    check_times(claims, now, expect.leeway)
    return Verified(claims, key, check_audience(claims, expect))


def read_header(token: str) -> dict[str, Any]:
    """The (unverified) JOSE header, only to choose the key; PyJWT then checks all of the token."""
    segment, dot, _ = token.partition(".")
    try:
        header = json.loads(base64url_decode(segment)) if dot else None
    except (ValueError, TypeError):
        header = None
    if not isinstance(header, dict):
        raise MalformedToken("not a JWT: the header is not base64url-encoded JSON")
    return header


def candidate_keys(header: Mapping[str, Any], keys: Mapping[str, VerificationKey]) -> list[VerificationKey]:
    alg, kid = header.get("alg"), header.get("kid")
    if not isinstance(alg, str) or alg not in ALLOWED_ALGORITHMS:  # `[] in frozenset` raises TypeError
        allowed = ", ".join(sorted(ALLOWED_ALGORITHMS))
        raise DisallowedAlgorithm(f"algorithm {str(alg)[:16]!r} is not allowed (only {allowed})")
    if kid is None:
        # Tokens from older kube-apiservers carry no kid: try every key of that algorithm, as it does.
        found = [k for k in keys.values() if k.algorithm == alg]
        if not found:
            raise DisallowedAlgorithm(f"no published signing key uses {alg}")
        return found
    key = keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise UnknownKey(f"unknown signing key id {str(kid)[:64]!r} (not published, or retired)")
    if key.algorithm != alg:
        raise DisallowedAlgorithm(f"key {key.kid} signs with {key.algorithm}, the token says {alg}")
    return [key]


def _decode(
    token: str, candidates: Iterable[VerificationKey], issuers: frozenset[str]
) -> tuple[dict[str, Any], VerificationKey]:
    for key in candidates:
        try:
            decoded = _DECODER.decode_complete(token, key.key, algorithms=[key.algorithm], issuer=issuers)
        except jwt.InvalidSignatureError:
            continue
        except jwt.MissingRequiredClaimError as e:
            raise MissingClaim(f"token has no {e.claim!r} claim") from None
        except jwt.InvalidIssuerError:
            raise WrongIssuer(f"token issuer is not accepted (expected one of {sorted(issuers)})") from None
        except jwt.PyJWTError as e:
            raise MalformedToken(f"malformed token: {e}") from None
        return decoded["payload"], key
    raise BadSignature("token signature does not verify")


MAX_NUMERIC_DATE = 253_402_300_799  # 9999-12-31T23:59:59Z


def _numeric_date(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedToken(f"token claim {name!r} is not a number of seconds")
    # Past year 9999 a date cannot be a datetime (nor, past ~1e308, a float): such a claim is a
    # malformed token, refused like any other, never an internal error ("backend unavailable").
    if not -MAX_NUMERIC_DATE <= value <= MAX_NUMERIC_DATE:
        raise MalformedToken(f"token claim {name!r} is out of range")
    return float(value)


def check_times(claims: Mapping[str, Any], now: dt.datetime, leeway: dt.timedelta) -> None:
    """`exp` must be after now, `nbf` and `iat` not after now, each within `leeway`."""
    at, slack = now.timestamp(), leeway.total_seconds()
    exp = _numeric_date(claims, "exp")
    if exp is not None and exp <= at - slack:
        raise ExpiredToken(f"token expired at {_iso(exp)}")
    nbf = _numeric_date(claims, "nbf")
    if nbf is not None and nbf > at + slack:
        raise ImmatureToken(f"token is not valid before {_iso(nbf)}")
    iat = _numeric_date(claims, "iat")
    if iat is not None and iat > at + slack:
        raise ImmatureToken(f"token was issued in the future ({_iso(iat)})")


def check_audience(claims: Mapping[str, Any], expect: Expectations) -> tuple[str, ...]:
    """The token's audiences that are accepted; TokenRejected when there are none."""
    aud = claims.get("aud")
    if aud is None or aud == []:
        named: tuple[str, ...] = expect.implicit_audiences
    elif isinstance(aud, str):
        named = (aud,)
    elif isinstance(aud, list) and all(isinstance(a, str) for a in aud):
        named = tuple(aud)
    else:
        raise MalformedToken("token claim 'aud' must be a string or a list of strings")
    accepted = tuple(a for a in named if a in expect.audiences)
    if not accepted:
        raise WrongAudience(f"token audiences {list(named)} include none of {sorted(expect.audiences)}")
    return accepted


def _iso(seconds: float) -> str:
    try:
        return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, ValueError, OSError):
        return f"{seconds:.0f}s after the epoch"
