"""The revocation set a server checks on every request: revoked token ids, revoked
certificate serials and banned names, in memory, refreshed every `tokens.cache_refresh`.

The webhook's result cache keeps what the chain said about a token for `authn.cache_ttl`;
without this check a revoked token or a banned user's token would be accepted from the cache
until the entry expired (30.8 s measured, issue 18). Every answer, cached or not, is checked
here; a check is a clock read and two set look-ups, so the hit path stays a hit path
(bench/webhook.py, docs/webhook.md).

The sets come from the shared database, so every replica refuses within `cache_refresh` of
`authsvc access revoke` or `authsvc token revoke`. When the database cannot be read, the sets
last read stay in force (a revocation the database could not store cannot be missed) and a
read is retried every second at most; before any read has succeeded there is nothing to
check against, and `refusal` raises BackendUnavailable: the caller fails closed.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from authsvc.db.tables import ACCESS_BANS
from authsvc.errors import BackendUnavailable
from authsvc.identity import fold_username
from pki.clock import Clock
from pki.inventory import Inventory
from pki.tokens.signing_keys import SigningKeyStore

log = logging.getLogger(__name__)

# After a failed read, the next one waits at least this long (a hit never waits on a dead database).
RETRY_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Denials:
    """One read of the revocation set."""

    revoked_ids: frozenset[str]  # token jtis and certificate serials (lower-case hex), unexpired
    banned: frozenset[str]  # folded user names (fold_username)
    loaded_at: float


class Denylist:
    """Thread-safe; `current()` is the hot path (no lock unless a refresh is due)."""

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        refresh_seconds: float,
        *,
        leeway_seconds: float = 0.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tokens = SigningKeyStore(engine)
        self._inventory = Inventory(engine)
        self._sessions_engine = engine
        self._clock = clock
        self._refresh = refresh_seconds
        self._leeway = leeway_seconds
        self._monotonic = monotonic
        self._denials: Denials | None = None
        self._next_read = 0.0
        self._lock = threading.Lock()

    def current(self) -> Denials:
        """The sets, read again when older than `cache_refresh`; BackendUnavailable before any read."""
        denials = self._denials
        now = self._monotonic()
        if denials is not None and now < self._next_read:
            return denials
        with self._lock:
            if self._denials is None or self._monotonic() >= self._next_read:
                self._read()
            if self._denials is None:
                raise BackendUnavailable("the revocation set (revoked credentials, banned users) cannot be read")
            return self._denials

    def fresh(self) -> Denials | None:
        """The sets when they are in memory and not due for a read; None otherwise. Never reads
        the database: a caller on an event loop answers from these, or goes to a thread."""
        denials = self._denials
        if denials is None or self._monotonic() >= self._next_read:
            return None
        return denials

    def _read(self) -> None:
        try:
            denials = self._load()
        except SQLAlchemyError as e:
            self._next_read = self._monotonic() + min(RETRY_SECONDS, self._refresh)
            stale = "keeping the last one read" if self._denials is not None else "none read yet"
            log.warning("cannot read the revocation set: %s (%s)", type(e).__name__, stale)
            return
        self._denials = denials
        self._next_read = denials.loaded_at + self._refresh

    def _load(self) -> Denials:
        loaded_at = self._monotonic()
        now = self._clock()
        # A token within the leeway of its exp still verifies: its revocation stays in force as long.
        jtis = self._tokens.revoked_jtis(now - dt.timedelta(seconds=self._leeway))
        serials = self._inventory.revoked_serials(now)
        with self._sessions_engine.connect() as connection:
            names = connection.scalars(select(ACCESS_BANS.c.username)).all()
        return Denials(jtis | serials, frozenset(fold_username(n) for n in names), loaded_at)

    def invalidate(self) -> None:
        """Read again at the next check (after a revocation made in this process)."""
        self._next_read = 0.0

    def refusal(self, username: str, credential_ids: Iterable[str] = (), *, folded: str | None = None) -> str | None:
        """Why `username` presenting these credentials (a token's jti, a certificate's serial) is
        refused now, or None. `folded` is fold_username(username) when the caller keeps it."""
        return self.refusal_in(self.current(), username, credential_ids, folded=folded)

    @staticmethod
    def refusal_in(
        denials: Denials, username: str, credential_ids: Iterable[str] = (), *, folded: str | None = None
    ) -> str | None:
        """`refusal` against sets already at hand (`current()` or `fresh()`)."""
        if (folded if folded is not None else fold_username(username)) in denials.banned:
            return "access revoked (banned)"
        for credential in credential_ids:
            if credential and credential in denials.revoked_ids:
                return f"credential {credential} revoked"
        return None

    def is_revoked_or_banned(self, username: str, credential_ids: Iterable[str] = ()) -> bool:
        """The one check per request (the webhook, the authentication proxy). Raises
        BackendUnavailable when the set has never been read (fail closed)."""
        return self.refusal(username, credential_ids) is not None
