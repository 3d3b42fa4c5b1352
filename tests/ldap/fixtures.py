"""Real slapd and Samba AD fixtures and settings helpers shared by tests/ldap, tests/login,
tests/hostile and tests/e2e.

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
from pki.ca import CertificateAuthority
from pki.clock import Clock, system_clock
from pki.keys import generate_private_key
from pki.names import SubjectAltNames, common_name_subject
from pki.profiles import SERVER
from pki.store import write_certificates, write_private_key
from tests.components import samba_ad
from tests.components.samba_ad import PortsTaken, SambaAD
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
AD_PASSWORD_ENV = "TEST_AD_BIND_PASSWORD"
ENVIRON = {PASSWORD_ENV: SERVICE_PASSWORD, AD_PASSWORD_ENV: samba_ad.SERVICE_PASSWORD}
SAMBA_PACKAGES = "samba samba-ad-dc samba-ad-provision winbind"
AD_GROUP_PREFIX = "ad:"
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


# --- Active Directory (Samba) -------------------------------------------------------------------


def require_samba() -> None:
    for name in ("samba", "samba-tool"):
        require_binary(name, SAMBA_PACKAGES)


def issue_serving_certificate(folder: Path, sans: Sequence[str]) -> tuple[Path, Path, Path]:
    """(certificate, key, CA): a serving certificate for `sans` that authsvc's pki issues."""
    now = dt.datetime.now(dt.UTC)
    ca = CertificateAuthority.create_root("authsvc test directory CA", now=now)
    key = generate_private_key()
    cert = ca.issue(
        subject=common_name_subject("directory"),
        public_key=key.public_key(),
        profile=SERVER,
        now=now,
        sans=SubjectAltNames.parse(list(sans)),
    )
    return (
        write_certificates(folder / "directory.crt", [cert]),
        write_private_key(folder / "directory.key", key),
        write_certificates(folder / "ca.crt", [ca.certificate]),
    )


@pytest.fixture(scope="session")
def active_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SambaAD]:
    """The session's Samba AD DC (127.0.0.1:389/636, LDAPS and StartTLS with a certificate
    authsvc issued for IP:127.0.0.1). Provisioned once, ~10-20 s. Tests that change an account
    put it back (`dave` is the one to disable)."""
    require_samba()
    folder = tmp_path_factory.mktemp("samba-ad")
    cert, key, ca = issue_serving_certificate(folder, ["IP:127.0.0.1"])
    server = SambaAD(tls_cert=cert, tls_key=key, tls_ca=ca, workdir=folder / "dc")
    try:
        server.start()
    except PortsTaken as e:
        pytest.fail(str(e), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


def ad_settings(server: SambaAD, **overrides: Any) -> LDAPSettings:
    """`flavor: active-directory` against the session's DC, over LDAPS verified with its CA."""
    values: dict[str, Any] = {
        "enabled": True,
        "flavor": "active-directory",
        "servers": (server.ldaps_url,),
        "ca_file": str(server.ca_file),
        "bind_dn": samba_ad.SERVICE_DN,
        "bind_password_env": AD_PASSWORD_ENV,
        "user_base": samba_ad.PEOPLE_DN,
        "group_base": samba_ad.GROUPS_DN,
        "group_prefix": AD_GROUP_PREFIX,
        "connect_timeout": dt.timedelta(seconds=2),
        "receive_timeout": dt.timedelta(seconds=5),
        "retry_failed_server_after": dt.timedelta(0),
        "pool_size": 2,
    }
    values.update(overrides)
    return LDAPSettings(**values)
