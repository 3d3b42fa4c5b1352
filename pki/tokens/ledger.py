"""Recording issued tokens in batches.

One database transaction per token would cost more than signing it (an SQLite commit is
~0.3 ms, an ES256 signature ~0.06 ms), so under load records are buffered and written by
one executemany: when the batch is full, or `delay` seconds after the first record of a
batch (a timer thread), or on `flush()`. A record that arrives when nothing was written
for `delay` seconds is written at once: a command that issues one token, or a quiet
server, records synchronously. A crash loses at most one window of records;
what is lost is a line in `token list` and, at worst, an earlier retire of the key that
signed them (the tokens then stop verifying early: the safe direction).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref

from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from pki.tokens.signing_keys import SigningKeyStore, TokenRow

log = logging.getLogger(__name__)

# Records kept for a retry while the database is unreachable; beyond that they are dropped (logged).
MAX_PENDING = 50_000


class TokenLedger:
    def __init__(self, store: SigningKeyStore, *, batch: int = 1024, delay: float = 0.2) -> None:
        self._store = store
        self._batch = batch
        self._delay = delay
        self._pending: list[TokenRow] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._last_write = -float("inf")
        atexit.register(_flush_at_exit, weakref.ref(self))

    def add(self, row: TokenRow) -> None:
        with self._lock:
            quiet = not self._pending and time.monotonic() - self._last_write >= self._delay
            self._pending.append(row)
            write_now = quiet or len(self._pending) >= self._batch
            if not write_now and self._timer is None:
                self._timer = threading.Timer(self._delay, self.flush)
                self._timer.daemon = True
                self._timer.start()
        if write_now:
            self.flush()

    def flush(self) -> None:
        """Write every pending record now (raises nothing: a failure is logged and retried later)."""
        with self._flush_lock:
            with self._lock:
                batch, self._pending = self._pending, []
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
            if not batch:
                return
            self._last_write = time.monotonic()
            try:
                self._store.record_tokens(batch)
            except IntegrityError:
                # A duplicate id cannot succeed on retry; the tokens themselves are valid.
                log.error("cannot record %d issued tokens: duplicate token id; batch dropped", len(batch))
            except SQLAlchemyError as e:
                self._requeue(batch, e)

    def _requeue(self, batch: list[TokenRow], error: Exception) -> None:
        with self._lock:
            keep = max(0, MAX_PENDING - len(self._pending))
            self._pending[:0] = batch[:keep]
        dropped = len(batch) - keep
        log.error(
            "cannot record %d issued tokens (%s); %d kept for retry, %d dropped",
            len(batch),
            type(error).__name__,
            min(keep, len(batch)),
            max(dropped, 0),
        )


def _flush_at_exit(ref: weakref.ref[TokenLedger]) -> None:
    ledger = ref()
    if ledger is not None:
        ledger.flush()
