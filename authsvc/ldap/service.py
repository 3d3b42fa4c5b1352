"""The directory service authsvc uses: users and passwords, plus groups through a TTL cache.

One instance per server process (built by `authsvc.login.install`), shared by /login, the
webhook's identity refresher and `authsvc ldap test`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from authsvc.ldap.cache import StaleIfErrorCache
from authsvc.ldap.config import DirectoryConfig
from authsvc.ldap.directory import Directory, DirectoryUser, ErrorHook
from authsvc.ldap.groups import GroupResolver
from authsvc.settings.ldap import LDAPSettings
from pki.clock import Clock, system_clock


@dataclass(frozen=True, slots=True)
class LDAPIdentity:
    """A directory user with resolved groups (prefix applied)."""

    username: str
    uid: str
    dn: str
    groups: tuple[str, ...]
    server: str = ""


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
        return cls(Directory(config, on_error=on_error), clock=clock)

    @property
    def settings(self) -> LDAPSettings:
        return self.directory.settings

    def find_user(self, username: str) -> DirectoryUser | None:
        return self.directory.find_user(username)

    def check_password(self, dn: str, password: str) -> bool:
        return self.directory.check_password(dn, password)

    def identity_of(self, user: DirectoryUser) -> LDAPIdentity:
        """`user` with its groups: from the cache when fresh (and for the same entry), else resolved."""
        key = cache_key(user.username)
        cached = self.cache.fresh(key)
        if cached is not None and cached.value is not None and cached.value.dn == user.dn:
            return cached.value
        identity = LDAPIdentity(user.username, user.uid, user.dn, self.resolver.groups_of(user), user.server)
        self.cache.put(key, identity)
        return identity

    def lookup(self, username: str) -> LDAPIdentity | None:
        """Does `username` still exist (match the user filter), and in which groups: cached for
        group_cache_ttl; a cached answer serves for stale_if_error more while the directory is down.
        Raises BackendUnavailable when there is no answer to give."""
        return self.cache.get_or_load(cache_key(username), lambda: self._load(username))

    def _load(self, username: str) -> LDAPIdentity | None:
        user = self.directory.find_user(username)
        if user is None:
            return None
        return LDAPIdentity(user.username, user.uid, user.dn, self.resolver.groups_of(user), user.server)

    def ready(self) -> bool:
        return self.directory.ready()

    def close(self) -> None:
        self.directory.close()
