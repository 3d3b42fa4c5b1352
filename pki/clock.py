"""The clock seam: every builder takes `now`, every service takes a `Clock`.

Tests inject a `FixedClock` and move it forward instead of sleeping.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol


class Clock(Protocol):
    def __call__(self) -> dt.datetime:
        """Return the current time as an aware UTC datetime."""
        ...


def system_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class FixedClock:
    """A settable clock for tests and simulations."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._now = start or dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
        if self._now.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")

    def __call__(self) -> dt.datetime:
        return self._now

    def advance(self, delta: dt.timedelta) -> dt.datetime:
        self._now += delta
        return self._now

    def set(self, when: dt.datetime) -> None:
        self._now = when


def utc(when: dt.datetime) -> dt.datetime:
    """Return `when` as an aware UTC datetime (naive values are taken as UTC)."""
    if when.tzinfo is None:
        return when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC)
