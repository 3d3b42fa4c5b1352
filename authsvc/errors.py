"""Errors raised by the authsvc service layer.

The CLI (authsvc/cli/__init__.py) and the HTTP layer (authsvc/web/) each map these to
one-line messages / TokenReview errors in exactly one place.
"""

from __future__ import annotations


class AuthsvcError(Exception):
    """Root of every error authsvc raises on purpose; the message is shown to the operator as is."""


class InvalidInput(AuthsvcError, ValueError):
    """A value or file given to authsvc is malformed (a kubeconfig, a users or token file, a
    bootstrap token's groups, a URL); the message names it and, where it is a file, the line."""


class ConfigError(AuthsvcError):
    """The configuration is invalid; the message lists every problem with its dotted path."""


class HomeError(AuthsvcError):
    """The home directory is missing, not initialised, or already initialised."""


class UsageError(AuthsvcError):
    """The command line itself is wrong: options that cannot go together, an unknown phase or
    name (exit status 2, like click's own usage errors). A request that is well formed but
    cannot be done is one of the errors below (exit status 1)."""


class NotFound(AuthsvcError):
    """What the command names does not exist (a user, a directory entry, a record)."""


class Conflict(AuthsvcError):
    """What the command would write is already there, or differs from what is there: the
    message says how to go on (--force, another command, editing the file)."""


class BackendUnavailable(AuthsvcError):
    """An authentication backend (LDAP, JWKS endpoint, database) cannot be reached: fail closed."""


class AuthenticationFailed(AuthsvcError):
    """Credentials were refused. The message never says whether the user exists."""


class RateLimited(AuthsvcError):
    """Too many failed attempts; retry after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
