"""The migrations: they build the schema the models describe, on SQLite and on PostgreSQL.

`test_migrations_match_the_models` is the guard that keeps migrations in step with the
models: when someone adds or changes a table without a migration it fails, and
`scripts/new-migration.sh "what changed"` is the fix.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata, produce_migrations, render_python_code
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from authsvc.db.migrations.head import HEAD
from authsvc.db.schema import (
    MIGRATIONS_DIR,
    SchemaError,
    SchemaState,
    alembic_config,
    migration_options,
    open_engine,
    read_status,
    schema_status,
    upgrade_database,
)
from pki.db import METADATA, make_engine

VERSIONS = sorted((MIGRATIONS_DIR / "versions").glob("m*.py"))


def table_names(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_head_constant_is_the_head_of_the_scripts() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_heads() == [HEAD], "run scripts/new-migration.sh, which keeps head.py in step"


def test_revision_ids_are_sequential_and_linear() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    chain = [r.revision for r in reversed(list(script.walk_revisions()))]
    assert chain == [f"{n:04d}" for n in range(1, len(chain) + 1)]
    assert len(VERSIONS) == len(chain)


@pytest.mark.parametrize("path", VERSIONS, ids=lambda p: p.name)
def test_migrations_do_not_import_application_code(path: Path) -> None:
    # A migration is history: importing pki/authsvc would make it change when the code does.
    source = path.read_text()
    assert not re.search(r"^\s*(from|import) (pki|authsvc)\b", source, re.MULTILINE)
    assert "UTCDateTime" not in source


def test_utc_datetime_renders_as_timezone_aware_datetime() -> None:
    options = migration_options()
    engine = sa.create_engine("sqlite://")
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts=options)
        upgrade_ops = produce_migrations(context, METADATA).upgrade_ops
    assert upgrade_ops is not None
    code = render_python_code(upgrade_ops, render_item=options["render_item"], render_as_batch=True)
    assert "sa.DateTime(timezone=True)" in code
    assert "UTCDateTime" not in code and "pki." not in code


def test_upgrade_head_on_an_empty_database(database_url: str) -> None:
    before, after = upgrade_database(database_url)
    assert before.state is SchemaState.EMPTY and after.revision == HEAD
    assert set(METADATA.tables) | {"alembic_version"} <= table_names(database_url)
    assert read_status(database_url).state is SchemaState.CURRENT


def test_migrations_match_the_models(database_url: str) -> None:
    upgrade_database(database_url)
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts=migration_options())
            differences = compare_metadata(context, METADATA)
    finally:
        engine.dispose()
    assert differences == [], (
        "the models and the migrations differ: run scripts/new-migration.sh 'what changed' and review the file"
    )


def test_downgrade_to_base_and_up_again(database_url: str) -> None:
    upgrade_database(database_url)
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(connection=conn), "base")
        assert table_names(database_url) <= {"alembic_version"}
        with engine.connect() as conn:
            assert schema_status(conn).state is SchemaState.EMPTY
    finally:
        engine.dispose()
    upgrade_database(database_url)
    assert set(METADATA.tables) <= table_names(database_url)


def test_schema_check_at_head_costs_one_query(database_url: str) -> None:
    upgrade_database(database_url)
    engine = make_engine(database_url)
    statements: list[str] = []
    try:
        with engine.connect() as conn:
            sa.event.listen(conn, "before_cursor_execute", lambda *args: statements.append(args[2]))
            assert schema_status(conn).state is SchemaState.CURRENT
    finally:
        engine.dispose()
    assert len(statements) == 1 and "alembic_version" in statements[0]


def test_an_empty_database_is_migrated_when_opened(database_url: str) -> None:
    engine = open_engine(database_url)
    engine.dispose()
    assert read_status(database_url).revision == HEAD


def test_a_table_without_migration_is_named(tmp_path: Path) -> None:
    ghost = sa.Table("ghost_without_migration", METADATA, sa.Column("id", sa.Integer, primary_key=True))
    try:
        with pytest.raises(SchemaError, match=r"\(ghost_without_migration\).*scripts/new-migration.sh"):
            open_engine(f"sqlite:///{tmp_path / 'a.db'}")
    finally:
        METADATA.remove(ghost)
    open_engine(f"sqlite:///{tmp_path / 'b.db'}").dispose()  # twin: without it, fine


@pytest.mark.postgres
def test_replicas_starting_together_migrate_once(postgres_url: str) -> None:
    results: list[tuple[SchemaState, SchemaState]] = []
    errors: list[BaseException] = []

    def start_replica() -> None:
        try:
            before, after = upgrade_database(postgres_url)
            results.append((before.state, after.state))
        except BaseException as e:  # collected: an exception in a thread is otherwise lost
            errors.append(e)

    threads = [threading.Thread(target=start_replica) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(before for before, _ in results) == [SchemaState.CURRENT] * 3 + [SchemaState.EMPTY]
    engine = make_engine(postgres_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == [HEAD]
    finally:
        engine.dispose()


def test_bootstrap_tokens_from_before_usages_keep_both(database_url: str) -> None:
    # 0006 adds usages: a token made before could authenticate and (kubeadm's default) sign.
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(connection=conn), "0005")
            conn.execute(
                sa.text(
                    "INSERT INTO bootstrap_tokens (token_id, secret_sha256, groups_json, description, created_at)"
                    " VALUES ('abcdef', :hash, '[]', '', CURRENT_TIMESTAMP)"
                ),
                {"hash": "0" * 64},
            )
        upgrade_database(database_url)
        with engine.connect() as conn:
            usages = conn.execute(sa.text("SELECT usages_json FROM bootstrap_tokens")).scalar_one()
    finally:
        engine.dispose()
    assert usages == '["authentication", "signing"]'


def test_import_models_registers_authsvcs_tables_in_a_fresh_process() -> None:
    # What scripts/new-migration.sh's autogenerate sees: without authsvc.db.tables it would write
    # a migration that drops every authsvc table (the other tests import the tables anyway).
    import subprocess
    import sys

    code = (
        "from authsvc.db.schema import import_models; import_models(); "
        "from pki.db import METADATA; print(' '.join(sorted(METADATA.tables)))"
    )
    tables = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert {"oidc_codes", "oidc_families", "oidc_issues", "login_failures", "certificates"} <= set(tables)
