"""Fixtures of the login tests (the shared ones, `make_home` and `app_for`, are in tests/login/fixtures.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from authsvc.home.opened import Home
from tests.components.slapd import Slapd
from tests.login.fixtures import MakeHome


@pytest.fixture
def client(make_home: MakeHome, app_for: Callable[[Home], Flask], directory_server: Slapd) -> FlaskClient:
    return app_for(make_home(directory_server)).test_client()
