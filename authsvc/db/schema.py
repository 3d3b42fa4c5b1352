"""The inventory database's schema: Alembic migrations and the revision check at start.

Every process that opens the database (each CLI command, each server worker) checks the
schema once, with one query: the alembic_version row against the head revision this code
was built with (authsvc/db/migrations/head.py). Alembic itself is loaded only when something
must change or the answer is not "at head".

    empty database            migrated to head (first start, `authsvc init`, a new PostgreSQL)
    at head                   used as is
    behind (an older revision) refused with "run `authsvc db upgrade`"; init and db upgrade upgrade it
    newer (an unknown revision) refused: an older authsvc must not write a newer schema
    our tables, no revision   refused: not created by these migrations
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from authsvc.db.migrations.head import HEAD
from authsvc.errors import AuthsvcError, BackendUnavailable
from pki.db import METADATA, UTCDateTime, make_engine

if TYPE_CHECKING:
    from alembic.autogenerate.api import AutogenContext
    from alembic.config import Config

    from authsvc.init.steps import InitContext

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version"
# PostgreSQL advisory lock held while migrating: replicas that start together on an empty
# database migrate it once; the others wait for the lock, then find it at head.
MIGRATION_LOCK_KEY = 0x61757468737663  # "authsvc"


class SchemaError(AuthsvcError):
    """The database schema does not match this authsvc (behind, newer, or not made by it)."""


class SchemaState(StrEnum):
    EMPTY = "empty"
    CURRENT = "current"
    BEHIND = "behind"
    NEWER = "newer"
    UNVERSIONED = "unversioned"


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    state: SchemaState
    revision: str | None
    head: str

    def as_dict(self) -> dict[str, str | None]:
        return {"revision": self.revision, "head": self.head, "state": self.state.value}


def redact(url: str) -> str:
    """The URL without its password: what error messages and reports show."""
    return make_url(url).render_as_string(hide_password=True)


# -- the check at start ---------------------------------------------------------------------


def read_revisions(conn: Connection) -> tuple[str, ...] | None:
    """The alembic_version rows, or None when there is no such table (one query when there is)."""
    if conn.in_transaction():
        # A failed statement would abort the caller's transaction (PostgreSQL): look first.
        return select_revisions(conn) if inspect(conn).has_table(VERSION_TABLE) else None
    try:
        return select_revisions(conn)
    except DBAPIError as e:
        if e.connection_invalidated:
            raise
        conn.rollback()  # PostgreSQL aborts the transaction on the failed statement
        if inspect(conn).has_table(VERSION_TABLE):
            raise
        return None


def select_revisions(conn: Connection) -> tuple[str, ...]:
    return tuple(conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars())  # noqa: S608


def schema_status(conn: Connection) -> SchemaStatus:
    revisions = read_revisions(conn)
    if not revisions:
        state = SchemaState.UNVERSIONED if model_tables_present(conn) else SchemaState.EMPTY
        return SchemaStatus(state, None, HEAD)
    revision = ",".join(revisions)
    if revision == HEAD:
        return SchemaStatus(SchemaState.CURRENT, revision, HEAD)
    known = revision in known_revisions()
    return SchemaStatus(SchemaState.BEHIND if known else SchemaState.NEWER, revision, HEAD)


def refusal(status: SchemaStatus, url: str) -> str:
    """The one-line reason a database in `status` cannot be used as it is."""
    where = redact(url)
    if status.state is SchemaState.BEHIND:
        return (
            f"database schema is behind: run `authsvc db upgrade` "
            f"(database {where} is at revision {status.revision}, this authsvc needs {status.head})"
        )
    if status.state is SchemaState.NEWER:
        return (
            f"database {where} has schema revision {status.revision}, newer than this authsvc knows "
            f"(its newest is {status.head}): run the authsvc release that upgraded it, "
            "or restore the database backup taken before that upgrade"
        )
    return (
        f"database {where} holds authsvc tables but no schema revision ({VERSION_TABLE}): it was not "
        "created by authsvc's migrations; move it aside and let authsvc create the schema in an empty database"
    )


def read_status(url: str) -> SchemaStatus:
    """Connect to `url` and report its schema state (changes nothing)."""
    engine = make_engine(url)
    try:
        with connect(engine, url) as conn:
            return schema_status(conn)
    finally:
        engine.dispose()


def connect(engine: Engine, url: str) -> Connection:
    try:
        return engine.connect()
    except SQLAlchemyError as e:
        reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
        raise BackendUnavailable(f"cannot connect to database {redact(url)}: {reason}") from e


def open_engine(url: str, *, upgrade_older: bool = False) -> Engine:
    """An engine on `url` whose schema is at head: an empty database is migrated, an older one
    only with `upgrade_older`. Raises SchemaError (behind, newer, not ours) or
    BackendUnavailable (cannot connect)."""
    engine = make_engine(url)
    try:
        with connect(engine, url) as conn:
            status = schema_status(conn)
        if status.state is SchemaState.CURRENT:
            return engine
        if status.state is SchemaState.EMPTY or (status.state is SchemaState.BEHIND and upgrade_older):
            upgrade(engine, url)
            return engine
        raise SchemaError(refusal(status, url))
    except BaseException:
        engine.dispose()
        raise


# -- migrating ------------------------------------------------------------------------------


def upgrade(engine: Engine, url: str) -> tuple[SchemaStatus, SchemaStatus]:
    """Bring the schema to head under the migration lock; returns the status before and after."""
    from alembic import command

    with connect(engine, url) as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        before = schema_status(conn)  # again, under the lock: another replica may have migrated
        if before.state in (SchemaState.NEWER, SchemaState.UNVERSIONED):
            raise SchemaError(refusal(before, url))
        if before.state is not SchemaState.CURRENT:
            command.upgrade(alembic_config(connection=conn), "head")
        check_models_migrated(conn)
    return before, SchemaStatus(SchemaState.CURRENT, HEAD, HEAD)


def upgrade_database(url: str) -> tuple[SchemaStatus, SchemaStatus]:
    """`authsvc db upgrade`: bring the database at `url` to head (status before and after)."""
    engine = make_engine(url)
    try:
        return upgrade(engine, url)
    finally:
        engine.dispose()


def upgrade_sql(url: str, out: TextIO) -> None:
    """Write the SQL that would bring the database at `url` to head (offline mode, for a DBA)."""
    from alembic import command

    status = read_status(url)
    if status.state in (SchemaState.NEWER, SchemaState.UNVERSIONED):
        raise SchemaError(refusal(status, url))
    revisions = f"{status.revision}:head" if status.revision else "head"
    command.upgrade(alembic_config(url=url, output_buffer=out), revisions, sql=True)


def check_models_migrated(conn: Connection) -> None:
    """Every table the models define exists: a table added to the models without a migration
    is named here, instead of failing later as "no such table"."""
    import_models()
    missing = sorted(set(METADATA.tables) - set(inspect(conn).get_table_names()))
    if missing:
        raise SchemaError(
            f"the models define tables that no migration creates ({', '.join(missing)}): "
            f'add a migration with scripts/new-migration.sh "add {missing[0]}"'
        )


def model_tables_present(conn: Connection) -> bool:
    import_models()
    return bool(set(METADATA.tables) & set(inspect(conn).get_table_names()))


def import_models() -> None:
    """Register every table on the shared METADATA: pki's and authsvc's."""
    import authsvc.db.tables  # noqa: F401
    import pki.inventory
    import pki.tokens.signing_keys  # noqa: F401


# -- Alembic configuration (shared by env.py, authsvc and the tests) -------------------------


def alembic_config(*, url: str | None = None, output_buffer: TextIO | None = None, connection: Any = None) -> Config:
    """Alembic configured in code: the migrations in authsvc/db/migrations, no ini file."""
    from alembic.config import Config

    config = Config(output_buffer=output_buffer)
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if url is not None:
        config.attributes["url"] = url
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def known_revisions() -> frozenset[str]:
    """Every revision in versions/ (reads the scripts: only when the database is not at head)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    return frozenset(revision.revision for revision in script.walk_revisions())


def script_head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | bool:
    """pki.db.UTCDateTime renders as the column type it stores: a migration must not import
    application code, which changes after the migration was written."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def migration_options() -> dict[str, Any]:
    """EnvironmentContext.configure() options: the same for running, generating and comparing.

    render_as_batch: SQLite cannot ALTER most things in place; batch mode copies the table
    there and emits plain ALTERs on PostgreSQL, so one migration serves both."""
    import_models()
    return {
        "target_metadata": METADATA,
        "render_item": render_item,
        "render_as_batch": True,
        "compare_type": True,
        "compare_server_default": True,
    }


# -- `authsvc init` -------------------------------------------------------------------------


def migrate_database_step(ctx: InitContext) -> None:
    """Init step: create the schema in an empty database, or bring an older one to head."""
    url = ctx.home.secrets.database_url
    if ctx.dry_run:
        plan_migration(ctx, url)
        return
    open_engine(url, upgrade_older=True).dispose()


def plan_migration(ctx: InitContext, url: str) -> None:
    database = make_url(url).database
    if url.startswith("sqlite") and database and not Path(database).exists():
        ctx.plan(f"create the inventory database {database} (schema {HEAD})")
        return
    status = read_status(url)
    if status.state is SchemaState.EMPTY:
        ctx.plan(f"create the schema (revision {HEAD}) in database {redact(url)}")
    elif status.state is SchemaState.BEHIND:
        ctx.plan(f"upgrade database {redact(url)} from revision {status.revision} to {HEAD}")
    elif status.state is not SchemaState.CURRENT:
        raise SchemaError(refusal(status, url))
