"""The directory service authsvc uses: users and passwords, plus groups through a TTL cache.

One instance per server process (built by `authsvc.login.install`), shared by /login, the
webhook's identity refresher and `authsvc ldap test`.

What a request asks of the directory (a review's look-up, a /login, a readiness check) runs
within `ldap.request_budget` (authsvc/ldap/budget.py): past it the request goes on without
the answer and the directory's breaker opens (authsvc/ldap/breaker.py), so that the next
requests do not wait at all until the directory answers again.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from authsvc.errors import BackendUnavailable
from authsvc.ldap.active_directory import BindRefusal
from authsvc.ldap.budget import BudgetExceeded, Deadlines
from authsvc.ldap.cache import StaleIfErrorCache
from authsvc.ldap.config import DirectoryConfig
from authsvc.ldap.directory import Directory, DirectoryUser, ErrorHook
from authsvc.ldap.groups import GroupResolver
from authsvc.settings.ldap import LDAPSettings
from pki.clock import Clock, system_clock

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class LDAPIdentity:
    """A directory user with resolved groups (prefix applied)."""

    username: str
    uid: str
    dn: str
    groups: tuple[str, ...]
    server: str = ""
    # Why the account may not be used now (ldap.account_checks): disabled, locked out, expired.
    inactive: str = ""


def cache_key(username: str) -> str:
    """Directory names match case-insensitively with insignificant spaces ignored (caseIgnoreMatch)."""
    return " ".join(username.split()).casefold()


class LDAPService:
    def __init__(self, directory: Directory, *, clock: Clock = system_clock) -> None:
        self.directory = directory
        self.resolver = GroupResolver(directory)
        settings = directory.settings
        self.cache: StaleIfErrorCache[str, LDAPIdentity | None] = StaleIfErrorCache(
            ttl=settings.group_cache_ttl,
            stale_if_error=settings.stale_if_error,
            size=settings.cache_size,
            clock=clock,
        )
        budget = settings.request_budget.total_seconds()
        # One thread per pooled connection: more could only wait for a connection.
        self.deadlines = Deadlines(budget, workers=settings.pool_size)
        self._requests = itertools.count()  # keys of work that is never shared (a login)

    @classmethod
    def from_settings(
        cls,
        settings: LDAPSettings,
        *,
        home_root: Path,
        environ: Mapping[str, str],
        clock: Clock = system_clock,
        on_error: ErrorHook = lambda _op: None,
    ) -> LDAPService:
        """Raises ConfigError for invalid DNs, a missing CA file or an unreadable bind password."""
        config = DirectoryConfig.from_settings(settings, home_root=home_root, environ=environ)
        return cls(Directory(config, on_error=on_error, clock=clock), clock=clock)

    @property
    def settings(self) -> LDAPSettings:
        return self.directory.settings

    def find_user(self, username: str) -> DirectoryUser | None:
        return self.directory.find_user(username)

    def check_password(self, dn: str, password: str) -> bool:
        return self.directory.check_password(dn, password)

    def bind(self, dn: str, password: str) -> BindRefusal | None:
        """None when the directory accepts the password, else why it refused (Directory.bind)."""
        return self.directory.bind(dn, password)

    def identity_of(self, user: DirectoryUser) -> LDAPIdentity:
        """`user` with its groups: from the cache when fresh (and for the same entry), else resolved."""
        key = cache_key(user.username)
        cached = self.cache.fresh(key)
        if cached is not None and cached.value is not None and cached.value.dn == user.dn:
            return cached.value
        identity = self._identity(user)
        self.cache.put(key, identity)
        return identity

    def lookup(self, username: str) -> LDAPIdentity | None:
        """Does `username` still exist (match the user filter), and in which groups: cached for
        group_cache_ttl; a cached answer serves for stale_if_error more while the directory is
        down or slow. Waits for the directory at most request_budget. Raises BackendUnavailable
        when there is no answer to give."""
        key = cache_key(username)
        cached = self.cache.fresh(key)
        if cached is not None:
            return cached.value
        try:
            return self.within_budget(lambda: self.cache.put(key, self._load(username)), key=("lookup", key))
        except BackendUnavailable:
            stale = self.cache.stale(key)
            if stale is None:
                raise
            return stale.value

    def within_budget(self, work: Callable[[], T], *, key: Hashable | None = None) -> T:
        """`work()` (directory calls) on a background thread, waited for at most request_budget;
        concurrent calls with the same `key` share one run. Past the budget the directory counts
        as hung (its breaker opens) and BackendUnavailable is raised; the work runs on to its own
        timeouts, so a late answer it stores still serves the next request. While the directory
        counts as hung, BackendUnavailable at once (the background threads may all be waiting
        on it: queued work would wait out the budget)."""
        self.directory.refuse_while_open()
        try:
            return self.deadlines.run(("request", next(self._requests)) if key is None else key, work)
        except BudgetExceeded as e:
            self.directory.count_error("request budget")
            self.directory.breaker.trip(f"no answer within ldap.request_budget ({self.deadlines.seconds:g}s)")
            raise BackendUnavailable(f"LDAP directory unavailable: {e}") from None

    def _load(self, username: str) -> LDAPIdentity | None:
        user = self.directory.find_user(username)
        return None if user is None else self._identity(user)

    def _identity(self, user: DirectoryUser) -> LDAPIdentity:
        # An account that may not be used gets no groups: nothing would use them.
        groups = () if user.inactive else self.resolver.groups_of(user)
        return LDAPIdentity(user.username, user.uid, user.dn, groups, user.server, user.inactive)

    def ready(self) -> bool:
        """Whether the directory answers a probe within request_budget; False at once while it
        counts as hung (/readyz must not wait for the directory's timeouts either)."""
        if self.directory.breaker.opened is not None:
            return self.directory.ready()  # False, and a recovery probe started if one is due
        try:
            return self.within_budget(self.directory.ready, key=("readiness",))
        except BackendUnavailable:
            return False

    def close(self) -> None:
        self.deadlines.close()
        self.directory.close()
