"""Fixtures of the LDAP tests: a real slapd (session scope), one per test for outages."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from authsvc.ldap.service import LDAPService
from tests.components.slapd import Slapd
from tests.ldap.fixtures import directory_server, ldap_service, ldap_settings, private_slapd

__all__ = ["directory", "directory_server", "private_slapd"]


@pytest.fixture
def directory(directory_server: Slapd) -> Iterator[LDAPService]:
    """An LDAPService on the shared server (direct groups; override settings in the test)."""
    service = ldap_service(ldap_settings(directory_server))
    yield service
    service.close()
