"""Errors raised by the pki library.

Every message names the offending value and, where there is one, the fix. The CLI and
HTTP layers turn these into one-line answers in exactly one place each.
"""

from __future__ import annotations


class PKIError(Exception):
    """Root of every error the pki library raises on purpose."""


class InvalidValue(PKIError, ValueError):
    """A value given to the library is malformed: a name, duration, address, SAN, pattern or
    profile. The message names the value. (A ValueError too, so that pydantic validators and
    click callbacks that check values with the library report it as theirs.)"""


class KeyMaterialError(PKIError):
    """A key cannot be generated, parsed, decrypted or is too weak to use."""


class CAError(PKIError):
    """A CA is missing, malformed, or its certificate and key do not match."""


class PolicyError(PKIError):
    """A request was refused by the signing policy; the message names the reason."""


class StoreError(PKIError):
    """A file or inventory operation failed (missing file, unsafe path, conflict)."""


class NotFoundError(StoreError):
    """The requested record (serial, key id, token id) does not exist."""


class TokenRejected(PKIError):
    """A token is not valid: bad signature, wrong claims, expired, revoked.

    Distinct from `KeyUnavailable`: a rejected token is a definite "no". The subclasses say
    why, as PyJWT's do (its `ExpiredSignatureError`, `InvalidAudienceError`, ...).
    """


class MalformedToken(TokenRejected):
    """Not a JWT, or a claim of the wrong type or out of range."""


class DisallowedAlgorithm(TokenRejected):
    """The header names an algorithm that is not allowed (`none`, HMAC, ...) or that no key uses."""


class UnknownKey(TokenRejected):
    """The `kid` names no published key (never published, or retired)."""


class BadSignature(TokenRejected):
    """The signature does not verify with any candidate key."""


class MissingClaim(TokenRejected):
    """A required claim is absent."""


class WrongIssuer(TokenRejected):
    """The `iss` claim is not an accepted issuer (or not the one for the token's kind)."""


class WrongAudience(TokenRejected):
    """None of the token's audiences is accepted."""


class ExpiredToken(TokenRejected):
    """`exp` has passed (beyond the leeway)."""


class ImmatureToken(TokenRejected):
    """`nbf` or `iat` lies in the future (beyond the leeway)."""


class RevokedToken(TokenRejected):
    """The token's `jti` has been revoked."""


class KeyUnavailable(PKIError):
    """The keys needed to decide about a token could not be obtained (fail closed)."""


class RotationError(PKIError):
    """A rotation phase was asked for out of order; the message says what must come first."""
