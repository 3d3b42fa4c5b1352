"""The webhook's result cache: token SHA-256 -> what was decided about it, for a short while.

Only decisions are cached: an answer that a backend could not give (an outage) never is, so
the next request asks again. Denials live shorter than identities, so a token that was just
created starts working soon; an identity never outlives its token's own `exp`.

A hit takes no lock: it is one dict lookup, and every change to the dict (a write, an
eviction, dropping an expired entry) is made under the lock, so a reader only ever sees the
dict before or after a change. With `server.threads > 1` several reviews share one cache: an
expired entry dropped without the lock once raced with an eviction (KeyError, HTTP 500).
Eviction is oldest-first: entries expire quickly anyway, and this keeps a hit to one lookup.
The entries are an OrderedDict for that: `popitem(last=False)` is O(1), where deleting
`next(iter(d))` from a plain dict scans past every slot freed since its last resize (~2.5 µs
an eviction once the cache is full, which a stream of fresh tokens keeps it; a hit is the same
C dict look-up either way).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

V = TypeVar("V")


class ResultCache(Generic[V]):
    def __init__(self, ttl: float, negative_ttl: float, max_size: int) -> None:
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.max_size = max_size
        self._entries: OrderedDict[bytes, tuple[V, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes, now: float) -> V | None:
        """The live value for `key`, or None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[1] <= now:
            self._drop(key, entry)
            return None
        return entry[0]

    def _drop(self, key: bytes, entry: tuple[V, float]) -> None:
        """Forget an expired entry, unless another thread has replaced or evicted it meanwhile."""
        with self._lock:
            if self._entries.get(key) is entry:
                del self._entries[key]

    def put(self, key: bytes, value: V, now: float, *, positive: bool, not_after: float | None = None) -> None:
        """Remember a decision: `positive` (an identity) for ttl, else for negative_ttl;
        `not_after` (the token's exp) caps how long an identity is kept."""
        ttl = self.ttl if positive else self.negative_ttl
        expires = min(now + ttl, not_after) if positive and not_after is not None else now + ttl
        if ttl <= 0 or self.max_size <= 0 or expires <= now:
            return
        with self._lock:
            entries = self._entries
            entries.pop(key, None)  # re-insert at the end: eviction order follows writes
            while len(entries) >= self.max_size:
                entries.popitem(last=False)
            entries[key] = (value, expires)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
