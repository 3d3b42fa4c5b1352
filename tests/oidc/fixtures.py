"""The provider in this process: a home serving OIDC (users file with `admin`), its app and a
test client over https (the CSRF cookie is Secure). A plugin listed in tests/conftest.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from authsvc.home.opened import Home
from authsvc.runtime import Runtime, build_runtime
from authsvc.web.app import create_app
from pki.clock import FixedClock
from tests.oidc.support import make_oidc_home

MakeOIDCHome = Callable[..., Home]


@pytest.fixture
def make_oidc(tmp_path: Path, clock: FixedClock, login_home_template: Path) -> MakeOIDCHome:
    """`make_oidc(**sections)`: a fresh home serving the provider, settings sections overridden."""
    count = iter(range(100))

    def make(**overrides: Any) -> Home:
        return make_oidc_home(login_home_template, tmp_path / f"oidc-home{next(count)}", clock, **overrides)

    return make


@pytest.fixture
def oidc_app(make_oidc: MakeOIDCHome) -> Iterator[Callable[..., Flask]]:
    runtimes: list[Runtime] = []

    def build(home: Home | None = None) -> Flask:
        runtime = build_runtime(home or make_oidc())
        runtimes.append(runtime)
        return create_app(runtime)

    yield build
    for runtime in runtimes:
        runtime.close()


def https_client(app: Flask) -> FlaskClient:
    client = app.test_client()
    client.environ_base["wsgi.url_scheme"] = "https"
    client.environ_base["REMOTE_ADDR"] = "192.0.2.10"
    return client


@pytest.fixture
def oidc(oidc_app: Callable[..., Flask]) -> FlaskClient:
    """A test client of a fresh provider."""
    return https_client(oidc_app())
