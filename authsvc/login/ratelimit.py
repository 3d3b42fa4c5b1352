"""Failed-login limits per user name and per client address, kept in the inventory database.

Replicas share the database, so a guesser cannot multiply their budget by spreading
attempts over replicas. One row per key and window: the key is a SHA-256 of "user:<name>"
or "addr:<ip>" (names are not stored, and arbitrary input has a fixed size); `failures`
counts the failed logins since `window_start`. A key with `limit` failures in the current
window is refused (HTTP 429, Retry-After = the rest of the window) until the window ends;
a correct password does not get through meanwhile.

The counter moves with one atomic upsert (`INSERT .. ON CONFLICT DO UPDATE`, SQLite and
PostgreSQL), so concurrent failures on two replicas are both counted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, bindparam, case, delete, literal, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.expression import Executable

from authsvc.db.tables import LOGIN_FAILURES
from authsvc.errors import BackendUnavailable, RateLimited
from authsvc.identity import fold_username
from pki.clock import Clock
from pki.db import UTCDateTime


@dataclass(frozen=True, slots=True)
class Limit:
    """At most `max_failures` failed logins for one key within `window`."""

    kind: str  # "user" or "addr": part of the key, and what the 429 message names
    max_failures: int
    window: dt.timedelta


def limit_key(kind: str, value: str) -> str:
    if kind == "user":
        # Every spelling a directory takes for one account has one budget (fold_username). What a
        # directory folds beyond this is caught by the matched account's own key (LoginService:
        # Verdict.subject).
        value = fold_username(value)
    return hashlib.sha256(f"{kind}:{value}".encode("utf-8", "surrogatepass")).hexdigest()


class RateLimiter:
    def __init__(self, engine: Engine, clock: Clock, *, user: Limit, address: Limit) -> None:
        self.engine = engine
        self.clock = clock
        self.limits = {"user": user, "addr": address}

    def check(self, username: str, address: str) -> bool:
        """Raise RateLimited when the user name or the client address is over its limit.
        Returns whether the user name has failures on record (a success must clear them)."""
        now = self.clock()
        keys = self._keys(username, address)
        rows = self._rows([key for key, _ in keys])
        for key, limit in keys:
            window_start, failures = rows.get(key, (now, 0))
            if failures < limit.max_failures:
                continue
            ends = window_start + limit.window
            if ends > now:
                retry = max(1, math.ceil((ends - now).total_seconds()))
                raise RateLimited(f"too many failed logins for this {_what(limit.kind)}: retry later", retry)
        return keys[0][0] in rows

    def check_user(self, username: str) -> bool:
        """`check` for the user name alone (the account a backend matched a spelling to)."""
        return self.check(username, "")

    def record_failure(self, username: str, address: str, *, account: str | None = None) -> None:
        """Count a failed login for the typed name, the address, and the matched `account`
        when it has another key (each key once)."""
        now = self.clock()
        keys = dict(self._keys(username, address))
        if account is not None:
            keys.setdefault(limit_key("user", account), self.limits["user"])
        try:
            with self.engine.begin() as conn:
                for key, limit in keys.items():
                    conn.execute(self._upsert(conn.dialect.name, key, now, now - limit.window))
                oldest = now - max(limit.window for limit in self.limits.values())
                conn.execute(delete(LOGIN_FAILURES).where(_COLUMNS.window_start < oldest))
        except SQLAlchemyError as e:
            raise BackendUnavailable(f"cannot record a failed login in the database: {type(e).__name__}") from e

    def record_success(self, *usernames: str) -> None:
        """A correct password clears the user's count, under each given spelling (not the
        address's: one good account must not reset a guesser's budget)."""
        keys = {limit_key("user", name) for name in usernames}
        try:
            with self.engine.begin() as conn:
                conn.execute(delete(LOGIN_FAILURES).where(_COLUMNS.key.in_(keys)))
        except SQLAlchemyError as e:
            raise BackendUnavailable(f"cannot update login limits in the database: {type(e).__name__}") from e

    # -- plumbing -------------------------------------------------------------------------

    def _keys(self, username: str, address: str) -> list[tuple[str, Limit]]:
        keys = [(limit_key("user", username), self.limits["user"])]
        if address:
            keys.append((limit_key("addr", address), self.limits["addr"]))
        return keys

    def _rows(self, keys: Sequence[str]) -> dict[str, tuple[dt.datetime, int]]:
        """key -> (window_start, failures) of one or two keys: one query, its statement built and
        compiled once (building a SELECT .. IN per login cost SQLAlchemy more than the query)."""
        try:
            with self.engine.connect() as conn:
                result = conn.execute(_READ_ROWS, {"first": keys[0], "second": keys[-1]})
                return {key: (start, failures) for key, start, failures in result}
        except SQLAlchemyError as e:
            raise BackendUnavailable(f"cannot read login limits from the database: {type(e).__name__}") from e

    @staticmethod
    def _upsert(dialect: str, key: str, now: dt.datetime, expired_before: dt.datetime) -> Executable:
        """failures += 1 in the current window, or a new window with failures = 1."""
        module = postgresql if dialect == "postgresql" else sqlite
        insert = module.insert(LOGIN_FAILURES).values(key=key, window_start=now, failures=1)
        table = LOGIN_FAILURES.c
        expired = table.window_start < expired_before
        statement: Executable = insert.on_conflict_do_update(
            index_elements=[table.key],
            set_={
                "failures": case((expired, 1), else_=table.failures + 1),
                "window_start": case((expired, literal(now, UTCDateTime())), else_=table.window_start),
            },
        )
        return statement


_COLUMNS = LOGIN_FAILURES.c
_READ_ROWS = select(_COLUMNS.key, _COLUMNS.window_start, _COLUMNS.failures).where(
    or_(_COLUMNS.key == bindparam("first"), _COLUMNS.key == bindparam("second"))
)


def _what(kind: str) -> str:
    return "user" if kind == "user" else "client address"
