"""A home wired to a real slapd and a users file, and its app: shared by tests/login and tests/hostile.

A plugin listed in tests/conftest.py: ask for the fixtures by name. Importing them into a
module would give that module a `login_home_template` (about twenty keys) of its own.
"""

from __future__ import annotations

import base64
import datetime as dt
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from flask import Flask

from authsvc.home.layout import HomeLayout
from authsvc.home.opened import Home
from authsvc.init.steps import initialize_home, with_public_listener
from authsvc.login.users_file import StaticUser, hash_password, write_users
from authsvc.runtime import Runtime, build_runtime
from authsvc.settings import Settings
from authsvc.web.app import create_app
from pki.clock import FixedClock
from tests.components.slapd import Slapd
from tests.ldap.fixtures import ENVIRON, ldap_settings

ADMIN = StaticUser("admin", "admin-uid", ("platform-admins",), "")
ADMIN_PASSWORD = "static-admin-pw"

MakeHome = Callable[..., Home]


# Cheap argon2 parameters: the default profile (64 MiB, t=3) takes seconds on a busy CI box.
# Unknown users get a decoy verify with the file's own parameters, so these apply to it too.
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(scope="session")
def login_home_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One initialised home (CAs, signing key, database, the static admin) per session, copied for each test."""
    root = tmp_path_factory.mktemp("login") / "template"
    home = initialize_home(root, Settings(), clock=FixedClock(dt.datetime.now(dt.UTC)), environ=ENVIRON).home
    admin = StaticUser(ADMIN.username, ADMIN.uid, ADMIN.groups, hash_password(ADMIN_PASSWORD, CHEAP_HASHER))
    write_users(home.layout.path(home.settings.login.users_file), [admin])
    home.stores.engine.dispose()
    return root


@pytest.fixture
def make_home(tmp_path: Path, clock: FixedClock, login_home_template: Path) -> MakeHome:
    """`make_home(slapd, **login_settings)`: a home whose /login asks the users file first,
    then the directory; tight rate limits (3 per user, 10 per address, 15 min)."""
    count = iter(range(100))

    def make(server: Slapd, *, ldap: dict[str, Any] | None = None, **login: Any) -> Home:
        login_values: dict[str, Any] = {
            "backends": ("users", "ldap"),
            "max_failures_per_user": 3,
            "max_failures_per_address": 10,
            "failure_window": dt.timedelta(minutes=15),
            "token_ttl": dt.timedelta(hours=1),
        }
        login_values.update(login)
        settings = Settings.model_validate(
            {
                "ldap": ldap_settings(server, **(ldap or {})).model_dump(),
                "login": login_values,
                # The webhook's result cache must not hide what the refresher decides.
                "authn": {"cache_ttl": 1, "negative_cache_ttl": 1},
            }
        )
        settings = with_public_listener(settings)  # as `authsvc init` writes it: discovery needs it
        root = tmp_path / f"home{next(count)}"
        shutil.copytree(login_home_template, root)
        return Home.of(HomeLayout.at(root), settings, clock=clock, environ=ENVIRON)

    return make


@pytest.fixture
def app_for() -> Iterator[Callable[[Home], Flask]]:
    runtimes: list[Runtime] = []

    def build(home: Home) -> Flask:
        runtime = build_runtime(home)
        runtimes.append(runtime)
        return create_app(runtime)

    yield build
    for runtime in runtimes:
        runtime.close()


def basic(username: str, password: str) -> dict[str, str]:
    """An Authorization header for any bytes (the test client's auth= would refuse some)."""
    raw = f"{username}:{password}".encode("utf-8", "surrogatepass")
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
