"""The Alembic environment: which metadata the migrations describe and how they run.

authsvc runs it in code (authsvc/db/schema.py passes an open connection in
`config.attributes["connection"]`); the `alembic` command line runs it with
`-x url=SQLALCHEMY_URL` (scripts/new-migration.sh). Offline mode (`--sql`) renders the DDL
for a DBA who applies it by hand.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, engine_from_config, pool

from authsvc.db.schema import migration_options


def run_with(connection: Connection) -> None:
    context.configure(connection=connection, **migration_options())
    # Inside the caller's transaction this is a no-op (authsvc/db/schema.py holds a lock in it).
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_with(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("no database: pass -x url=SQLALCHEMY_URL")
    engine = engine_from_config({"sqlalchemy.url": url}, poolclass=pool.NullPool)
    with engine.connect() as connection:
        run_with(connection)
    engine.dispose()


def run_offline() -> None:
    url = context.config.attributes.get("url") or context.get_x_argument(as_dictionary=True).get("url")
    context.configure(url=url, literal_binds=True, **migration_options())
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
