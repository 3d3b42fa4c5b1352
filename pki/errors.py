"""Errors raised by the pki library.

Every message names the offending value and, where there is one, the fix. The CLI and
HTTP layers turn these into one-line answers in exactly one place each.
"""

from __future__ import annotations


class PKIError(Exception):
    """Root of every error the pki library raises on purpose."""


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

    Distinct from `KeyUnavailable`: a rejected token is a definite "no".
    """


class KeyUnavailable(PKIError):
    """The keys needed to decide about a token could not be obtained (fail closed)."""


class RotationError(PKIError):
    """A rotation phase was asked for out of order; the message says what must come first."""
