"""Bans: users whose access was revoked (`authsvc access revoke`) until `authsvc access restore`.

A ban is looked up by the folded name (authsvc.identity.fold_username): case, extra spaces and
Unicode compatibility forms do not make another person, as a directory would not (a ban on
"alice" refuses "Alice" too: the safe direction). `BanGate` is the pki `SubjectGate` that
HomeStores gives the certificate issuer and the token service: nothing is minted for a
banned name, by any command or endpoint. The webhook's per-request check uses
`denylist.Denylist` instead.

The gate keeps the keys of every ban in memory and reads them again (one query: the table
holds a row per banned person) when they are `BAN_CACHE_SECONDS` old, and at once after a ban
or a restore through the same store. It used to ask the database for each name: ~0.1 ms
(SQLite; a network round trip on PostgreSQL), twice an ES256 signature, so two thirds of a
token's issuance (bench/tokens.py). So a ban made by another process (`authsvc access revoke`,
another replica) stops minting within `BAN_CACHE_SECONDS`; a server's webhook refuses a banned
person's tokens within `tokens.cache_refresh` anyway. A person signing in (the self-service
page, the OpenID Connect provider's form) is checked against the database itself
(`check_now`): a revocation counts there at once. A read that fails is not papered over with
the last one: nothing is minted until the database answers (fail closed).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, Row, delete, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from authsvc.db.tables import ACCESS_BANS
from authsvc.errors import AuthsvcError, BackendUnavailable
from authsvc.identity import fold_username
from pki.errors import PolicyError

_BANS = ACCESS_BANS.c
_KEYS = select(_BANS.key)

# How old the gate's copy of the bans may be before it reads them again.
BAN_CACHE_SECONDS = 1.0


class AccessRevoked(AuthsvcError, PolicyError):
    """Refused: the user's access is revoked. A PolicyError too, so that every minting path
    (/login's 403, a command's one-line error) refuses it as it refuses a privileged name.
    The message names no one's reason: /login shows it to whoever logs in."""


def ban_key(username: str) -> str:
    return hashlib.sha256(fold_username(username).encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class Ban:
    username: str
    banned_at: dt.datetime
    banned_by: str
    reason: str = ""
    # The grants authsvc removed with the ban, as authsvc.cluster.grants.Grant fields.
    bindings: tuple[dict[str, Any], ...] = field(default=())

    @classmethod
    def from_row(cls, row: Row[Any]) -> Ban:
        return cls(row.username, row.banned_at, row.banned_by, row.reason, tuple(json.loads(row.bindings_json)))

    def as_dict(self) -> dict[str, Any]:
        return {
            "bannedAt": self.banned_at.isoformat(timespec="seconds"),
            "bannedBy": self.banned_by,
            "reason": self.reason,
        }

    def describe(self) -> str:
        why = f": {self.reason}" if self.reason else ""
        return f"revoked by {self.banned_by} at {self.banned_at:%Y-%m-%dT%H:%M:%SZ}{why}"


class BanStore:
    """The `access_bans` table; every method is one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # Bumped by every ban and restore made through this store: a gate on it reads again.
        self.generation = 0

    def keys(self) -> frozenset[str]:
        """The keys (ban_key) of every ban."""
        with self.engine.connect() as conn:
            return frozenset(conn.execute(_KEYS).scalars())

    def get(self, username: str) -> Ban | None:
        with self.engine.connect() as conn:
            row = _row(conn, ban_key(username))
        return None if row is None else Ban.from_row(row)

    def bans(self) -> list[Ban]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(ACCESS_BANS).order_by(_BANS.banned_at)).all()
        return [Ban.from_row(r) for r in rows]

    def add(self, ban: Ban) -> bool:
        """Record `ban`; False when the user was banned already (the first ban stays)."""
        key = ban_key(ban.username)
        row = insert(ACCESS_BANS).values(
            key=key,
            username=ban.username,
            banned_at=ban.banned_at,
            banned_by=ban.banned_by,
            reason=ban.reason,
            bindings_json=json.dumps(list(ban.bindings)),
        )
        try:
            with self.engine.begin() as conn:
                if _row(conn, key) is not None:
                    return False
                conn.execute(row)
        except IntegrityError:
            return False  # banned concurrently
        finally:
            self.generation += 1
        return True

    def add_bindings(self, username: str, bindings: Sequence[dict[str, Any]]) -> None:
        """Remember more removed grants on an existing ban (a second `access revoke`)."""
        key = ban_key(username)
        with self.engine.begin() as conn:
            row = _row(conn, key)
            if row is not None and bindings:
                known = json.loads(row.bindings_json)
                merged = json.dumps(known + [b for b in bindings if b not in known])
                conn.execute(update(ACCESS_BANS).where(_BANS.key == key).values(bindings_json=merged))

    def remove(self, username: str) -> Ban | None:
        """Lift the ban; the ban that was lifted, or None when there was none."""
        key = ban_key(username)
        with self.engine.begin() as conn:
            row = _row(conn, key)
            if row is None:
                return None
            ban = Ban.from_row(row)
            conn.execute(delete(ACCESS_BANS).where(_BANS.key == key))
        self.generation += 1
        return ban


def _row(conn: Connection, key: str) -> Row[Any] | None:
    return conn.execute(select(ACCESS_BANS).where(_BANS.key == key)).first()


class BanGate:
    """The pki SubjectGate: AccessRevoked for a banned name; BackendUnavailable when the
    database cannot say (nothing is minted then: fail closed). Thread-safe; see the module's
    docstring for how fresh its copy of the bans is."""

    def __init__(
        self, store: BanStore, *, max_age: float = BAN_CACHE_SECONDS, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.store = store
        self.max_age = max_age
        self._monotonic = monotonic
        # (ban keys, monotonic time of the read, the store's generation then)
        self._copy: tuple[frozenset[str], float, int] | None = None
        self._lock = threading.Lock()

    def __call__(self, username: str) -> None:
        try:
            banned = ban_key(username) in self._keys()
        except SQLAlchemyError as e:
            raise BackendUnavailable(f"cannot read the access bans: {type(e).__name__}") from None
        if banned:
            self.check_now(username)  # the row, for the message (and lifted meanwhile?)

    def check_now(self, username: str) -> None:
        """The gate with the database asked now, not the copy: for a person signing in (a few a
        second at most), where "revoked a moment ago" must already count."""
        try:
            ban = self.store.get(username)
        except SQLAlchemyError as e:
            raise BackendUnavailable(f"cannot read the access bans: {type(e).__name__}") from None
        if ban is not None:
            raise AccessRevoked(
                f"the access of {username!r} is revoked (an administrator's `authsvc access restore "
                f"{ban.username}` gives it back)"
            )

    def _keys(self) -> frozenset[str]:
        copy = self._copy
        if copy is not None and self._fresh(copy):
            return copy[0]
        with self._lock:
            copy = self._copy
            if copy is None or not self._fresh(copy):
                self._copy = None  # a failed read leaves nothing to fall back on
                generation, read_at = self.store.generation, self._monotonic()
                copy = self._copy = (self.store.keys(), read_at, generation)
            return copy[0]

    def _fresh(self, copy: tuple[frozenset[str], float, int]) -> bool:
        return copy[2] == self.store.generation and self._monotonic() - copy[1] < self.max_age
