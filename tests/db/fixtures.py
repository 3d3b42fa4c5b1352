"""A real PostgreSQL for every suite that needs one (a plugin listed in tests/conftest.py).

One server per test session (initdb costs about a second); each test that asks for
`postgres_url` gets the application database dropped and created again, so tests never see
each other's tables. Ask for the fixtures by name; importing them into a module or conftest
would give that module a server of its own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.components.postgres import Postgres
from tests.components.support import require_binary


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    """The running server (role and database `authsvc`); fails under CI=true when not installed."""
    require_binary("postgres")
    require_binary("initdb")
    with Postgres() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: Postgres) -> str:
    """SQLAlchemy URL (postgresql+psycopg://) of an empty application database."""
    if not postgres_server.running:  # a test that stopped it must not break the next one
        postgres_server.start()
    postgres_server.reset_database()
    return postgres_server.url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An empty database of each kind authsvc supports: SQLite (the default) and PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'authsvc.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url
