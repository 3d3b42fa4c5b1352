"""Registers the markers of the component tests (no project-wide pytest config yet)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slapd: needs a real OpenLDAP slapd (Debian package slapd)")
    config.addinivalue_line("markers", "postgres: needs a real PostgreSQL server (Debian package postgresql)")
