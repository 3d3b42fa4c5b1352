"""A circuit breaker for the directory: once it is known to be down or hung, stop waiting on it.

Closed, calls go to the directory. A call that could not reach it, or a review that waited out
its budget (`ldap.request_budget`), opens the breaker: from then on calls fail at once
(BackendUnavailable, so the webhook answers from the stale-if-error cache or fails closed)
instead of each waiting for the directory's timeouts. While open, at most one probe at a time,
at most every `ldap.probe_interval`, asks the directory again; the first answer (a probe's, or
a late one from a call that was already under way) closes it.

Only state and time live here (the clock is injected); the caller runs the probe, on a thread
of its own, and nothing here is held while it runs.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass

from pki.clock import Clock

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Opened:
    since: dt.datetime
    reason: str


class CircuitBreaker:
    """Thread-safe; every method is a few attribute reads and writes under one lock."""

    def __init__(self, *, probe_interval: dt.timedelta, clock: Clock) -> None:
        self.probe_interval = probe_interval
        self.clock = clock
        self._lock = threading.Lock()
        self._opened: Opened | None = None
        self._probing = False
        self._last_probe: dt.datetime | None = None

    @property
    def opened(self) -> Opened | None:
        """Since when and why the directory counts as unavailable; None while it answers."""
        return self._opened

    def trip(self, reason: str) -> None:
        """The directory did not answer (in time): fail at once from now on."""
        with self._lock:
            if self._opened is not None:
                return
            self._opened = Opened(self.clock(), reason)
            self._last_probe = None  # the first probe may go at once
        log.error("LDAP directory unavailable (%s): directory calls fail at once until it answers a probe", reason)

    def answered(self) -> None:
        """The directory answered a call: close."""
        if self._opened is None:  # the common case: no lock
            return
        with self._lock:
            opened, self._opened = self._opened, None
        if opened is not None:
            down = (self.clock() - opened.since).total_seconds()
            log.warning("LDAP directory answers again after %.1fs: directory calls resume", down)

    def claim_probe(self) -> bool:
        """True when the caller should probe now: open, no probe under way, and none for
        probe_interval. The caller then reports with `probe_done`."""
        if self._opened is None:
            return False
        now = self.clock()
        with self._lock:
            if self._opened is None or self._probing:
                return False
            if self._last_probe is not None and now - self._last_probe < self.probe_interval:
                return False
            self._probing, self._last_probe = True, now
            return True

    def probe_done(self, answered: bool) -> None:
        with self._lock:
            self._probing = False
        if answered:
            self.answered()
