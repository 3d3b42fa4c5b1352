"""The check at start, `authsvc db upgrade|current` and `authsvc init` on older and newer schemas.

"A newer release" is simulated for real: a copy of the migrations with one more revision
(which adds a table), and the head constant that release would carry. The database then goes
through the real upgrade, and the real older code meets the newer schema.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

import authsvc.db.schema
from authsvc.db.migrations.head import HEAD
from authsvc.db.schema import SchemaError, SchemaState, open_engine, read_status
from authsvc.errors import BackendUnavailable
from authsvc.home.opened import Home, open_home
from pki.db import make_engine
from tests.components.support import free_port
from tests.conftest import run_cli

NEXT = f"{int(HEAD) + 1:04d}"
NEXT_MIGRATION = f'''
import sqlalchemy as sa
from alembic import op

revision = "{NEXT}"
down_revision = "{HEAD}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("next_release_table", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("next_release_table")
'''


@pytest.fixture
def newer_release(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """While active, authsvc behaves like the next release (one more migration); `.undo()` ends it."""
    migrations = tmp_path / "next-release-migrations"
    shutil.copytree(authsvc.db.schema.MIGRATIONS_DIR, migrations, ignore=shutil.ignore_patterns("__pycache__"))
    (migrations / "versions" / f"m{NEXT}_next_release.py").write_text(NEXT_MIGRATION)
    monkeypatch.setattr(authsvc.db.schema, "MIGRATIONS_DIR", migrations)
    monkeypatch.setattr(authsvc.db.schema, "HEAD", NEXT)
    yield monkeypatch


@pytest.fixture
def home(tmp_path: Path) -> Home:
    """A home with default settings and its SQLite inventory at head: all these tests need
    (the suite-wide `home` fixture also creates the whole kubeadm tree, which takes seconds)."""
    root = tmp_path / "home"
    root.mkdir()
    (root / "authsvc.yaml").write_text("{}\n")
    opened = open_home(root, environ={})
    opened.stores.engine.dispose()
    return opened


def tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_home_at_head_opens(home: Home) -> None:
    assert read_status(home.secrets.database_url).state is SchemaState.CURRENT
    assert home.stores.inventory.certificates() == []


def test_older_schema_is_refused_until_db_upgrade(home: Home, newer_release: pytest.MonkeyPatch) -> None:
    url = home.secrets.database_url
    with pytest.raises(SchemaError) as refused:
        open_engine(url)
    assert "schema is behind: run `authsvc db upgrade`" in str(refused.value)
    assert f"at revision {HEAD}" in str(refused.value) and f"needs {NEXT}" in str(refused.value)
    listed = run_cli(["certs", "list"], home=home.root)
    assert listed.exit_code == 1 and "run `authsvc db upgrade`" in listed.stderr

    upgraded = run_cli(["db", "upgrade"], home=home.root)
    assert upgraded.exit_code == 0, upgraded.stderr
    assert f"upgraded from revision {HEAD} to {NEXT}" in upgraded.stdout
    assert "next_release_table" in tables(url)
    assert run_cli(["certs", "list"], home=home.root).exit_code == 0
    again = run_cli(["db", "upgrade"], home=home.root)
    assert f"already at revision {NEXT}" in again.stdout


def test_newer_schema_is_refused_naming_both_revisions(home: Home, newer_release: pytest.MonkeyPatch) -> None:
    assert run_cli(["db", "upgrade"], home=home.root).exit_code == 0
    newer_release.undo()  # back to this release's code, against the next release's schema
    with pytest.raises(SchemaError, match=rf"schema revision {NEXT}, newer than this authsvc knows.*newest is {HEAD}"):
        open_engine(home.secrets.database_url)
    for args in (["certs", "list"], ["db", "upgrade"], ["init"]):
        result = run_cli(args, home=home.root)
        assert result.exit_code == 1, args
        assert result.stderr.count("\n") == 1 and f"revision {NEXT}, newer" in result.stderr
        assert "Traceback" not in result.stderr
    current = run_cli(["db", "current", "-o", "json"], home=home.root)
    assert json.loads(current.stdout) | {"database": ""} == {
        "database": "",
        "revision": NEXT,
        "head": HEAD,
        "state": "newer",
    }


def test_init_upgrades_an_older_schema(home: Home, newer_release: pytest.MonkeyPatch) -> None:
    result = run_cli(["init"], home=home.root)
    assert result.exit_code == 0, result.stderr
    assert read_status(home.secrets.database_url).revision == NEXT


def test_init_dry_run_plans_the_database_and_writes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    result = run_cli(["init", "--dry-run"], home=root)
    assert result.exit_code == 0, result.stderr
    assert f"would create the inventory database {root / 'authsvc.db'} (schema {HEAD})" in result.stdout
    assert not root.exists()


def test_unversioned_tables_are_refused(home: Home) -> None:
    engine = make_engine(home.secrets.database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE alembic_version"))
    engine.dispose()
    with pytest.raises(SchemaError, match="holds authsvc tables but no schema revision"):
        open_engine(home.secrets.database_url)
    assert run_cli(["db", "current"], home=home.root).stdout.split()[-1] == "unversioned"


def test_unreachable_database_is_one_line_without_password(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://authsvc:s3cret-pw@127.0.0.1:{free_port()}/authsvc"
    with pytest.raises(
        BackendUnavailable, match=r"cannot connect to database postgresql\+psycopg://authsvc:\*\*\*@"
    ) as e:
        open_engine(url)
    assert "s3cret-pw" not in str(e.value)


@pytest.mark.postgres
def test_init_and_db_commands_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    root = tmp_path / "home"
    root.mkdir()
    (root / "authsvc.yaml").write_text("database:\n  url_env: AUTHSVC_DATABASE_URL\n")
    env = {"AUTHSVC_DATABASE_URL": postgres_url}
    password = ":" + postgres_url.split(":")[2]  # ":PASSWORD@127.0.0.1"

    current = run_cli(["db", "current", "-o", "json"], home=root, env=env)
    assert json.loads(current.stdout)["state"] == "empty"
    assert password not in current.stdout and ":***@" in current.stdout
    sql = run_cli(["db", "upgrade", "--sql"], home=root, env=env)
    assert "CREATE TABLE certificates" in sql.stdout and "TIMESTAMP WITH TIME ZONE" in sql.stdout
    assert read_status(postgres_url).state is SchemaState.EMPTY  # --sql ran nothing

    result = run_cli(["init"], home=root, env=env)
    assert result.exit_code == 0, result.stderr
    listed = run_cli(["certs", "list", "-o", "json"], home=root, env=env)
    assert "ca" in [c["name"] for c in json.loads(listed.stdout)]  # init's CA, recorded in PostgreSQL
    upgraded = run_cli(["db", "upgrade"], home=root, env=env)
    assert "already at revision" in upgraded.stdout and password not in upgraded.stdout


@pytest.mark.postgres
def test_db_upgrade_creates_the_schema_in_an_empty_postgresql(tmp_path: Path, postgres_url: str) -> None:
    root = tmp_path / "home"
    root.mkdir()
    (root / "authsvc.yaml").write_text(f"database:\n  url: '{postgres_url}'\n")
    result = run_cli(["db", "upgrade"], home=root)
    assert result.exit_code == 0, result.stderr
    assert f"created the schema at revision {HEAD}" in result.stdout
    assert "certificates" in tables(postgres_url)
