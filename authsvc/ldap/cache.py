"""A small TTL cache that may serve an expired answer while its source is down (stale-if-error).

Used for "does this user still exist, and in which groups": fresh answers for `ttl`; after
that the source is asked again, and only if it cannot answer is the old answer served, for at
most `stale_if_error` more (authsvc/ldap/service.py). Time comes from the injected clock.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

from pki.clock import Clock

log = logging.getLogger(__name__)

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Cached(Generic[V]):
    value: V
    stored_at: dt.datetime


class StaleIfErrorCache(Generic[K, V]):
    """Thread-safe, bounded (least recently stored goes first)."""

    def __init__(self, *, ttl: dt.timedelta, stale_if_error: dt.timedelta, size: int, clock: Clock) -> None:
        self.ttl = ttl
        self.stale_if_error = stale_if_error
        self.size = size
        self.clock = clock
        self._items: OrderedDict[K, Cached[V]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.stale_served = 0

    def fresh(self, key: K) -> Cached[V] | None:
        """The entry for `key` if it is younger than the TTL."""
        entry = self._entry(key)
        if entry is not None and self.clock() - entry.stored_at < self.ttl:
            self.hits += 1
            return entry
        self.misses += 1
        return None

    def put(self, key: K, value: V) -> V:
        with self._lock:
            self._items[key] = Cached(value, self.clock())
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

    def stale(self, key: K) -> Cached[V] | None:
        """The entry for `key` if it is past the TTL but within the stale-if-error window: what
        may be served while the source is unavailable (logged and counted when there is one)."""
        entry = self._entry(key)
        if entry is None or self.clock() - entry.stored_at >= self.ttl + self.stale_if_error:
            return None
        self.stale_served += 1
        log.warning("serving a cached answer from %s while the source is unavailable", entry.stored_at.isoformat())
        return entry

    def invalidate(self, key: K) -> None:
        with self._lock:
            self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def _entry(self, key: K) -> Cached[V] | None:
        with self._lock:
            return self._items.get(key)
