"""Fixtures of the LDAP tests: a service on the session's slapd (tests/ldap/fixtures.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from authsvc.ldap.service import LDAPService
from tests.components.slapd import Slapd
from tests.ldap.fixtures import ldap_service, ldap_settings


@pytest.fixture
def directory(directory_server: Slapd) -> Iterator[LDAPService]:
    """An LDAPService on the shared server (direct groups; override settings in the test)."""
    service = ldap_service(ldap_settings(directory_server))
    yield service
    service.close()
