"""Sign-ins of the self-service page, kept in the inventory database.

The browser holds a 256-bit random value in a `__Host-` cookie; the database holds its SHA-256
with who signed in and until when. State on the server, not in a signed cookie, because a
sign-in must be able to end before it expires: logout ends it on every replica at once (a
signed cookie would stay valid until its expiry for whoever copied it), and replicas share the
database already, so they need no shared signing secret. A value that is not in the table (a
forged, altered or ended one) names no session.

Raises BackendUnavailable when the database cannot answer (the page then fails closed).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Row, delete, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from authsvc.db.tables import SELF_SERVICE_SESSIONS
from authsvc.errors import BackendUnavailable
from authsvc.login.backends import LoginIdentity
from pki.clock import Clock

# What a cookie's value may be before it is looked up: token_urlsafe(32) is 43 characters.
MAX_SECRET_LENGTH = 128
_SESSIONS = SELF_SERVICE_SESSIONS.c


@dataclass(frozen=True, slots=True)
class Session:
    """Who is signed in, as the login backend named them at sign-in, and until when."""

    username: str
    uid: str
    groups: tuple[str, ...]
    source: str
    created_at: dt.datetime
    expires_at: dt.datetime

    @property
    def identity(self) -> LoginIdentity:
        return LoginIdentity(self.username, self.uid, self.groups, self.source)

    @classmethod
    def from_row(cls, row: Row[Any]) -> Session:
        groups = tuple(json.loads(row.groups_json))
        return cls(row.username, row.uid, groups, row.source, row.created_at, row.expires_at)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class SessionStore:
    """The `self_service_sessions` table; every method is one transaction."""

    def __init__(self, engine: Engine, clock: Clock, ttl: dt.timedelta) -> None:
        self.engine = engine
        self._clock = clock
        self.ttl = ttl

    def start(self, identity: LoginIdentity) -> tuple[str, Session]:
        """A new session for `identity`: (the cookie's value, the session). Sessions that expired
        are deleted on the way (the table holds live sign-ins only)."""
        now = self._clock()
        secret = secrets.token_urlsafe(32)
        session = Session(identity.username, identity.uid, tuple(identity.groups), identity.source, now, now + self.ttl)
        row = insert(SELF_SERVICE_SESSIONS).values(
            session_sha256=_digest(secret),
            username=session.username,
            uid=session.uid,
            groups_json=json.dumps(list(session.groups)),
            source=session.source,
            created_at=session.created_at,
            expires_at=session.expires_at,
        )
        with self._transaction() as connection:
            connection.execute(delete(SELF_SERVICE_SESSIONS).where(_SESSIONS.expires_at <= now))
            connection.execute(row)
        return secret, session

    def find(self, secret: str) -> Session | None:
        """The live session the cookie's value names, or None (unknown, ended or expired)."""
        if not secret or len(secret) > MAX_SECRET_LENGTH:
            return None
        now = self._clock()
        query = select(SELF_SERVICE_SESSIONS).where(
            _SESSIONS.session_sha256 == _digest(secret),
            _SESSIONS.ended_at.is_(None),
            _SESSIONS.expires_at > now,
        )
        with self._transaction() as connection:
            row = connection.execute(query).first()
        return Session.from_row(row) if row is not None else None

    def end(self, secret: str) -> bool:
        """End the session (logout); False when there was none to end."""
        if not secret or len(secret) > MAX_SECRET_LENGTH:
            return False
        statement = (
            update(SELF_SERVICE_SESSIONS)
            .where(_SESSIONS.session_sha256 == _digest(secret), _SESSIONS.ended_at.is_(None))
            .values(ended_at=self._clock())
        )
        with self._transaction() as connection:
            return bool(connection.execute(statement).rowcount)

    def end_all(self, username: str) -> int:
        """End every live session of `username` (`authsvc access revoke`: a later restore must not
        bring them back); how many were ended."""
        statement = (
            update(SELF_SERVICE_SESSIONS)
            .where(_SESSIONS.username == username, _SESSIONS.ended_at.is_(None))
            .values(ended_at=self._clock())
        )
        with self._transaction() as connection:
            return int(connection.execute(statement).rowcount)

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as connection:
                yield connection
        except SQLAlchemyError as e:
            raise BackendUnavailable(f"the self-service sessions cannot be read or written: {type(e).__name__}") from e
