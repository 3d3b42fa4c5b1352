"""SQLAlchemy's ORM for the tables declared as classes: their declarative Base, on pki.db's
METADATA beside the Core tables, and the sessions of the stores that use them.

Imported by those stores only: what reads and writes Core tables (the certificate inventory)
does not load the ORM."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import DeclarativeBase, sessionmaker

from pki.db import METADATA


class Base(DeclarativeBase):
    metadata = METADATA


def make_sessionmaker(engine: Engine) -> sessionmaker[Any]:
    return sessionmaker(engine, expire_on_commit=False)
