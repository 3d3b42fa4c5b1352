"""Database plumbing shared by every table: one MetaData, one engine factory.

Every table is a SQLAlchemy Core `Table` on METADATA (pki/inventory.py, pki/tokens/signing_keys.py,
authsvc/db/tables.py), queried with Core: schema checks and Alembic see every table in one place,
and no command loads SQLAlchemy's ORM (~70 ms of a command's start, docs/operations.md section 6).

SQLite (the embedded default) runs in WAL mode with synchronous=NORMAL: a commit is one
append to the log without an fsync of the database file, which is what keeps issuance with
an inventory record fast, and a crash loses at most the last commits, never consistency.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, TypeDecorator, create_engine, event
from sqlalchemy.pool import ConnectionPoolEntry

METADATA = MetaData()


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Stores aware UTC datetimes; SQLite drops the zone, so it is put back on the way out."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the inventory")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Engine for an SQLAlchemy URL, with SQLite tuned for a single home directory."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def create_schema(engine: Engine) -> None:
    """Create every table known to METADATA (the modules that define them must be imported first)."""
    METADATA.create_all(engine)
