"""Directory work with a deadline: the caller waits at most `seconds`, whatever the network does.

ldap3's timeouts bound each socket operation, not a look-up made of several (connect, bind,
user search, group searches, a retry): their sum can reach tens of seconds, and kube-apiserver
gives up on a webhook after 30. So a review's look-up runs on one of a few background threads
and the review waits for it at most `ldap.request_budget`. Past that the review goes on without
it (stale answer or fail closed); the look-up itself runs on to its own timeouts and, if it
gets an answer, leaves it in the cache for the next review.

Look-ups of the same key share one run (a burst of reviews for one user asks the directory
once). No lock is held while waiting or while the directory is asked.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable, Hashable
from typing import TypeVar

from authsvc.errors import BackendUnavailable

T = TypeVar("T")


class BudgetExceeded(BackendUnavailable):
    """The directory did not answer within the budget (the work goes on in the background)."""


class Deadlines:
    """Runs work on `workers` background threads; each caller waits at most `seconds` for it."""

    def __init__(self, seconds: float, *, workers: int, name: str = "authsvc-ldap") -> None:
        self.seconds = seconds
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._running: dict[Hashable, concurrent.futures.Future[object]] = {}
        self._lock = threading.Lock()

    def run(self, key: Hashable, work: Callable[[], T]) -> T:
        """`work()`'s result or exception; BudgetExceeded when it takes longer than the budget.
        A caller that finds the same key under way waits for that run instead of starting one."""
        with self._lock:
            future = self._running.get(key)
            started = future is None
            if future is None:
                future = self._executor.submit(work)
                self._running[key] = future
        if started:  # outside the lock: the callback runs here at once if the work is already done
            future.add_done_callback(lambda done: self._forget(key, done))
        # wait() rather than result(timeout=): the work may raise a TimeoutError of its own.
        concurrent.futures.wait([future], timeout=self.seconds)
        if not future.done():
            raise BudgetExceeded(f"the directory did not answer within {self.seconds:g}s")
        result: T = future.result()  # type: ignore[assignment]
        return result

    def _forget(self, key: Hashable, future: concurrent.futures.Future[object]) -> None:
        with self._lock:
            if self._running.get(key) is future:
                del self._running[key]

    def close(self) -> None:
        """Stop taking work; work under way ends on its own timeouts."""
        self._executor.shutdown(wait=False, cancel_futures=True)
