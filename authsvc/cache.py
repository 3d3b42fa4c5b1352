"""The webhook's result cache: token SHA-256 -> who it is (or a definite no), for a short while.

Only decisions are cached: an answer that a backend could not give (an outage) never is, so
the next request asks again. Denials live shorter than identities, so a token that was just
created starts working soon. An identity never outlives its token's own `exp`.

Reads take no lock (a dict lookup is atomic under the GIL); writes and evictions take one.
Eviction is oldest-first: entries expire quickly anyway, and this keeps a hit to one lookup.
"""

from __future__ import annotations

import threading

from authsvc.identity import UserInfo

CacheEntry = tuple[UserInfo | None, float]  # (identity or None for a denial, expires at, epoch s)


class ResultCache:
    def __init__(self, ttl: float, negative_ttl: float, max_size: int) -> None:
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.max_size = max_size
        self._entries: dict[bytes, CacheEntry] = {}
        self._lock = threading.Lock()

    def get(self, key: bytes, now: float) -> CacheEntry | None:
        """The live entry for `key` (its identity may be None: a cached denial), or None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[1] <= now:
            self._entries.pop(key, None)
            return None
        return entry

    def put(self, key: bytes, user: UserInfo | None, now: float, not_after: float | None = None) -> None:
        """Remember a decision; `not_after` (the token's exp) caps how long an identity is kept."""
        ttl = self.ttl if user is not None else self.negative_ttl
        expires = now + ttl
        if not_after is not None and user is not None:
            expires = min(expires, not_after)
        if ttl <= 0 or self.max_size <= 0 or expires <= now:
            return
        with self._lock:
            entries = self._entries
            entries.pop(key, None)  # re-insert at the end: eviction order follows writes
            while len(entries) >= self.max_size:
                del entries[next(iter(entries))]
            entries[key] = (user, expires)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
