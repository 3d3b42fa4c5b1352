"""Real slapd fixtures and settings helpers shared by tests/ldap, tests/login and tests/hostile.

A plugin listed in tests/conftest.py: ask for the fixtures by name. Importing them into a
module or conftest would give that module a `directory_server` of its own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from authsvc.ldap.service import LDAPService
from authsvc.settings.ldap import LDAPSettings
from pki.clock import Clock, system_clock
from tests.components.slapd import (
    DEFAULT_USERS,
    GROUPS_DN,
    PEOPLE_DN,
    SERVICE_DN,
    SERVICE_PASSWORD,
    Slapd,
    User,
)
from tests.components.support import require_binary

PASSWORD_ENV = "TEST_LDAP_BIND_PASSWORD"
ENVIRON = {PASSWORD_ENV: SERVICE_PASSWORD}
# Every character that means something in a filter, a DN or HTTP Basic, plus non-ASCII.
SPECIAL_PASSWORD = 'p(a)s*s\\w,o"rd=+;<>#é €'
EXTRA_USERS = (
    User("back\\slash", "back-pw"),
    User("star*", "star-pw"),
    User("special", SPECIAL_PASSWORD),
)

# typed name -> the only uid it may find (None: must find nothing)
HOSTILE_NAMES: list[tuple[str, str | None]] = [
    ("*", None),
    ("al*", None),
    ("s*", None),
    ("*)(uid=*", None),
    ("alice)(uid=*", None),
    ("alice)", None),
    ("(", None),
    (")", None),
    ("\\", None),
    ("\\2a", None),
    ("alice\x00", None),
    ("\x00", None),
    ("alice,ou=people,dc=example,dc=org", None),
    ("uid=alice,ou=people,dc=example,dc=org", None),
    ("x" * 10_000, None),
    ("weird,name", "weird,name"),
    ("paren(x)", "paren(x)"),
    ("back\\slash", "back\\slash"),
    ("star*", "star*"),
]


def require_slapd() -> None:
    for name in ("slapd", "slapadd"):
        require_binary(name)


@pytest.fixture(scope="session")
def directory_server() -> Iterator[Slapd]:
    """The default dataset + hostile names + the 500-group user `many`. Do not stop or modify it:
    tests that do take a server of their own (`private_slapd`)."""
    require_slapd()
    with Slapd(users=[*DEFAULT_USERS, *EXTRA_USERS], many_groups=500) as server:
        yield server


@pytest.fixture
def private_slapd() -> Iterator[Slapd]:
    """A server of the test's own (default dataset): stop it, change it."""
    require_slapd()
    with Slapd() as server:
        yield server


def ldap_settings(servers: Slapd | Sequence[str], **overrides: Any) -> LDAPSettings:
    """Settings for the seeded directory: plain LDAP on loopback, fast failure detection."""
    urls = (servers.url,) if isinstance(servers, Slapd) else tuple(servers)
    values: dict[str, Any] = {
        "enabled": True,
        "servers": urls,
        "start_tls": False,
        "allow_plaintext": True,
        "bind_dn": SERVICE_DN,
        "bind_password_env": PASSWORD_ENV,
        "user_base": PEOPLE_DN,
        "group_base": GROUPS_DN,
        "connect_timeout": dt.timedelta(seconds=2),
        "receive_timeout": dt.timedelta(seconds=5),
        "retry_failed_server_after": dt.timedelta(0),
        "pool_size": 2,
    }
    values.update(overrides)
    return LDAPSettings(**values)


def ldap_service(
    settings: LDAPSettings, *, clock: Clock = system_clock, home_root: Path = Path("/nonexistent"), **kwargs: Any
) -> LDAPService:
    return LDAPService.from_settings(settings, home_root=home_root, environ=ENVIRON, clock=clock, **kwargs)
