"""Login backends: who may log in with a user name and password ("ldap", "users").

Each answers with a `Verdict`: the user is unknown to it (the next backend is asked), known
but the password is wrong (the answer is no: no fall-through to a backend that happens to
know the same name), or known with the right password (the identity). An unknown user
costs the same work as a wrong password (a decoy bind, a decoy argon2 verify), so response
times do not tell which names exist. BackendUnavailable means "cannot decide": fail closed.
A refusal carries its reason for the operator (audit log, log line), never for the client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from authsvc.errors import BackendUnavailable
from authsvc.ldap.service import LDAPService
from authsvc.login.users_file import UsersFile


@dataclass(frozen=True, slots=True)
class LoginIdentity:
    username: str
    uid: str
    groups: tuple[str, ...]
    source: str  # the backend's name; the token's source claim


@dataclass(frozen=True, slots=True)
class Verdict:
    known: bool
    identity: LoginIdentity | None = None
    # The account the backend matched the typed name to, even when it refuses the login (a
    # wrong password, a spelling only the directory's folding matched): failed logins count
    # against this account's budget too, whatever spelling was typed.
    subject: str | None = None
    # Why the login is refused (no identity): "wrong password", "account disabled (AD data 533)".
    reason: str = ""


UNKNOWN_USER = Verdict(known=False, reason="unknown user")
WRONG_PASSWORD = Verdict(known=True, reason="wrong password")


class LoginBackend(Protocol):
    name: str

    def authenticate(self, username: str, password: str) -> Verdict:
        """Raises BackendUnavailable when the backend cannot decide."""
        ...

    def ready(self) -> bool: ...


class LDAPLoginBackend:
    """Search the user with the service account, bind as the DN found, resolve groups."""

    name = "ldap"

    def __init__(self, ldap: LDAPService) -> None:
        self.ldap = ldap
        # Bound to when the name is unknown, so that the directory does the same work.
        self.decoy_dn = f"cn=authsvc-no-such-user,{ldap.settings.user_base}"

    def authenticate(self, username: str, password: str) -> Verdict:
        """Waits for the directory at most ldap.request_budget in all (then BackendUnavailable)."""
        return self.ldap.within_budget(lambda: self._ask(username, password))

    def _ask(self, username: str, password: str) -> Verdict:
        user = self.ldap.find_user(username)
        if user is None or not user.exact:
            self.ldap.bind(self.decoy_dn, password)
            if user is None:
                return UNKNOWN_USER
            reason = f"spelling matched {user.username!r} only by the directory's folding"
            return Verdict(False, subject=user.username, reason=reason)
        refusal = self.ldap.bind(user.dn, password)
        if refusal is not None:
            return Verdict(True, subject=user.username, reason=refusal.reason)
        if user.inactive:  # the bind went through, but the account may not be used (ldap.account_checks)
            return Verdict(True, subject=user.username, reason=user.inactive)
        identity = self.ldap.identity_of(user)
        return Verdict(True, LoginIdentity(identity.username, identity.uid, identity.groups, self.name), user.username)

    def ready(self) -> bool:
        return self.ldap.ready()


class UsersFileLoginBackend:
    """The static users file (argon2 hashes), re-read when it changes."""

    name = "users"

    def __init__(self, users: UsersFile) -> None:
        self.users = users

    def authenticate(self, username: str, password: str) -> Verdict:
        known, user = self.users.verify(username, password)
        if user is None:
            return WRONG_PASSWORD if known else UNKNOWN_USER
        return Verdict(True, LoginIdentity(user.username, user.uid, user.groups, self.name), user.username)

    def ready(self) -> bool:
        try:
            self.users.lookup("")
        except BackendUnavailable:
            return False
        return True
