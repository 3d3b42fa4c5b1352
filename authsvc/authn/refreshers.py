"""Identity refreshers: re-check at review time who a /login token names, by its source.

The webhook's "authsvc" backend verifies a user token, then calls
the refresher for the token's source (built by authsvc/login/wiring.py). For tokens from /login that is:

- "ldap": does the user still match the user filter (exists, not disabled by the filter),
  with the same uid, and in which groups now: through the LDAP service's TTL cache, so a
  group removal or a disabled account takes effect within `ldap.group_cache_ttl`, not at
  token expiry. During an outage a cached answer serves for `ldap.stale_if_error` more;
  after that BackendUnavailable (the webhook fails closed).
- "users": the same against the static users file (re-read when it changes).

A refresher returns the identity to put in the TokenReview (groups replaced), or None: the
token no longer names a valid user, or its groups now are ones the signing policy would not
have put in a token (a `system:masters` added in the directory after the login must not ride
in on a token issued before it).
"""

from __future__ import annotations

import dataclasses
import hmac
import logging

from authsvc.identity import UserInfo
from authsvc.ldap.service import LDAPService, cache_key
from authsvc.login.users_file import UsersFile
from pki.errors import PolicyError
from pki.policy import SigningPolicy, check_groups

log = logging.getLogger(__name__)


def same_uid(expected: str, actual: str) -> bool:
    """A token that carries a uid must name the same account (a deleted and re-created user
    with the same name is someone else). Tokens without a uid match on the name alone."""
    if not expected:
        return True
    return hmac.compare_digest(expected.encode(), actual.encode())


def groups_allowed(policy: SigningPolicy | None, username: str, groups: tuple[str, ...]) -> bool:
    """Whether a token may carry `groups` now: the rule that applied when it was issued."""
    if policy is None:
        return True
    try:
        check_groups(policy, groups)
    except PolicyError as e:
        log.warning("token of %r refused: its groups now break the signing policy (%s)", username, e)
        return False
    return True


class LDAPIdentityRefresher:
    def __init__(self, ldap: LDAPService, policy: SigningPolicy | None = None) -> None:
        self.ldap = ldap
        self.policy = policy

    def __call__(self, user: UserInfo) -> UserInfo | None:
        """Raises BackendUnavailable when the directory cannot answer and no stale answer may serve."""
        identity = self.ldap.lookup(user.username)
        if identity is None or cache_key(identity.username) != cache_key(user.username):
            log.info("token of %r refused: no longer in the directory (or filtered out)", user.username)
            return None
        if identity.inactive:
            log.info("token of %r refused: %s", user.username, identity.inactive)
            return None
        if not same_uid(user.uid, identity.uid):
            log.info("token of %r refused: the directory entry has another uid now", user.username)
            return None
        if not groups_allowed(self.policy, user.username, identity.groups):
            return None
        return dataclasses.replace(user, groups=identity.groups)

    def groups_for(self, username: str) -> tuple[str, ...] | None:
        """The directory groups of `username` (e.g. a user from an external OIDC issuer), or
        None when the directory has no such user. Same cache and failure rules."""
        identity = self.ldap.lookup(username)
        return identity.groups if identity is not None and not identity.inactive else None


class UsersFileIdentityRefresher:
    def __init__(self, users: UsersFile, policy: SigningPolicy | None = None) -> None:
        self.users = users
        self.policy = policy

    def __call__(self, user: UserInfo) -> UserInfo | None:
        """Raises BackendUnavailable when the users file exists but is unusable."""
        entry = self.users.lookup(user.username)
        if entry is None or not same_uid(user.uid, entry.uid):
            log.info("token of %r refused: no longer in the users file (or another uid)", user.username)
            return None
        if not groups_allowed(self.policy, user.username, entry.groups):
            return None
        return dataclasses.replace(user, groups=entry.groups)
