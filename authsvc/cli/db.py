"""`authsvc db upgrade|current`: the inventory database's schema (Alembic migrations)."""

from __future__ import annotations

import sys

import click

from authsvc.cli import CliState
from authsvc.cli.output import emit, output_option

CURRENT_COLUMNS = [("DATABASE", "database"), ("REVISION", "revision"), ("HEAD", "head"), ("STATE", "state")]


@click.group()
def db() -> None:
    """The inventory database: schema revision and migrations.

    \b
    authsvc creates the schema in an empty database by itself. After installing a newer
    authsvc, stop the old processes (or let them refuse), back up the database, then run
    `authsvc db upgrade` once; every replica checks the revision when it starts.
    """


@db.command()
@click.option("--sql", is_flag=True, help="Print the SQL that would run instead of running it (for a DBA).")
@click.pass_obj
def upgrade(state: CliState, sql: bool) -> None:
    """Bring the database schema to the newest revision this authsvc knows.

    Refuses a database whose schema is newer than this authsvc. Replicas that run it at the
    same time on PostgreSQL migrate once (an advisory lock serialises them).
    """
    from authsvc.db.schema import SchemaState, redact, upgrade_database, upgrade_sql

    url = state.home().secrets.database_url
    if sql:
        upgrade_sql(url, sys.stdout)
        return
    before, after = upgrade_database(url)
    where = redact(url)
    if before.state is SchemaState.CURRENT:
        click.echo(f"database {where} is already at revision {after.revision}; nothing to do")
    elif before.state is SchemaState.EMPTY:
        click.echo(f"database {where}: created the schema at revision {after.revision}")
    else:
        click.echo(f"database {where}: upgraded from revision {before.revision} to {after.revision}")


@db.command()
@output_option()
@click.pass_obj
def current(state: CliState, output_format: str) -> None:
    """Show the database's schema revision next to the newest one this authsvc knows.

    STATE is current, behind (run `authsvc db upgrade`), newer (this authsvc is too old),
    empty (created on first use) or unversioned (tables not made by authsvc's migrations).
    """
    from authsvc.db.schema import read_status, redact

    url = state.home().secrets.database_url
    status = read_status(url)
    emit({"database": redact(url), **status.as_dict()}, output_format, columns=CURRENT_COLUMNS)
