"""One crash injector: the process "dies" at the Nth call of a function, by default `os.replace`
(every atomic write and rename of pki/store.py goes through it, so the Nth call is the moment
between two file swaps).

The crash is a BaseException, as a kill is: nothing in the code under test can catch it, only
its `finally`/`except BaseException` clean-ups run.

    with crash_at(3), pytest.raises(Crash):   # dies at the 3rd os.replace
        rotate(home)
    swaps = count_calls(lambda: rotate(home))  # how many there are in a whole run
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

__all__ = ["CallCounter", "Crash", "count_calls", "crash_at"]


class Crash(BaseException):
    """The process dies here."""


class CallCounter:
    """Stands in for `real`: counts the calls, and raises Crash at call number `crash_at`."""

    def __init__(self, real: Callable[..., Any], crash_at: int | None = None) -> None:
        self.real, self.crash_at, self.calls = real, crash_at, 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls == self.crash_at:
            raise Crash(f"killed at {getattr(self.real, '__name__', 'call')} #{self.calls}")
        return self.real(*args, **kwargs)


@contextmanager
def crash_at(n: int | None, module: object = os, name: str = "replace") -> Iterator[CallCounter]:
    """`module.name` crashes at its `n`th call (None: only counts) while the block runs."""
    counter = CallCounter(getattr(module, name), crash_at=n)
    with mock.patch.object(module, name, counter):
        yield counter


def count_calls(run: Callable[[], object], module: object = os, name: str = "replace") -> int:
    """How many times `run()` calls `module.name`."""
    with crash_at(None, module, name) as counter:
        run()
    return counter.calls
