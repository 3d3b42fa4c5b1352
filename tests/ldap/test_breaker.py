"""The directory's circuit breaker and request budget, on their own (no directory: state, time, threads).

With a real slapd frozen: tests/ldap/test_outage.py, tests/login/test_login_http.py and
tests/hostile/test_directory_hang.py.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest

from authsvc.ldap.breaker import CircuitBreaker
from authsvc.ldap.budget import BudgetExceeded, Deadlines
from pki.clock import FixedClock

INTERVAL = dt.timedelta(seconds=5)


@pytest.fixture
def breaker(clock: FixedClock) -> CircuitBreaker:
    return CircuitBreaker(probe_interval=INTERVAL, clock=clock)


def test_closed_until_tripped_and_closed_by_an_answer(breaker: CircuitBreaker, clock: FixedClock) -> None:
    assert breaker.opened is None and not breaker.claim_probe()  # closed: nothing to probe
    breaker.trip("user search: timed out")
    opened = breaker.opened
    assert opened is not None and opened.since == clock() and opened.reason == "user search: timed out"
    breaker.trip("again")  # already open: the first reason and time stay
    assert breaker.opened == opened
    breaker.answered()
    assert breaker.opened is None


def test_one_probe_at_a_time_and_at_most_every_interval(breaker: CircuitBreaker, clock: FixedClock) -> None:
    breaker.trip("hung")
    assert breaker.claim_probe()  # the first one at once
    assert not breaker.claim_probe()  # one is under way
    breaker.probe_done(answered=False)
    assert not breaker.claim_probe()  # not before the interval
    clock.advance(INTERVAL - dt.timedelta(seconds=1))
    assert not breaker.claim_probe()
    clock.advance(dt.timedelta(seconds=1))
    assert breaker.claim_probe()
    breaker.probe_done(answered=True)
    assert breaker.opened is None and not breaker.claim_probe()


def test_a_new_trip_lets_the_first_probe_go_at_once(breaker: CircuitBreaker, clock: FixedClock) -> None:
    breaker.trip("hung")
    assert breaker.claim_probe()
    breaker.probe_done(answered=True)
    breaker.trip("hung again")  # right after: the last probe's time does not hold the next one back
    assert breaker.claim_probe()


def test_work_within_the_budget_returns_its_result_or_its_error() -> None:
    deadlines = Deadlines(5.0, workers=2)
    try:
        assert deadlines.run("a", lambda: 42) == 42
        with pytest.raises(ValueError, match="boom"):
            deadlines.run("b", _raise(ValueError("boom")))
        # A TimeoutError of the work's own (ldap3's socket timeouts are ones) is its error, not the budget's.
        with pytest.raises(TimeoutError) as raised:
            deadlines.run("c", _raise(TimeoutError("socket")))
        assert not isinstance(raised.value, BudgetExceeded)
    finally:
        deadlines.close()


def test_past_the_budget_the_caller_goes_on_and_the_work_finishes_later() -> None:
    deadlines = Deadlines(0.2, workers=2)
    release, done = threading.Event(), threading.Event()

    def hang() -> str:
        release.wait(10)
        done.set()
        return "late"

    try:
        started = time.monotonic()
        with pytest.raises(BudgetExceeded):
            deadlines.run("k", hang)
        assert 0.2 <= time.monotonic() - started < 1.0
        release.set()
        assert done.wait(5)  # it ran on to the end: a late answer can still be stored
    finally:
        release.set()
        deadlines.close()


def test_callers_of_the_same_key_share_one_run() -> None:
    deadlines = Deadlines(5.0, workers=4)
    calls: list[int] = []
    release = threading.Event()
    results: list[int] = []

    def work() -> int:
        calls.append(1)
        release.wait(5)
        return len(calls)

    callers = [threading.Thread(target=lambda: results.append(deadlines.run("alice", work))) for _ in range(5)]
    try:
        for caller in callers:
            caller.start()
        time.sleep(0.2)  # let every caller join the run before it ends (not a wait for expiry)
        release.set()
        for caller in callers:
            caller.join(5)
        assert results == [1] * 5 and calls == [1]
        assert deadlines.run("alice", work) == 2  # a finished run is not reused
    finally:
        release.set()
        deadlines.close()


def _raise(error: Exception):  # type: ignore[no-untyped-def]
    def work() -> None:
        raise error

    return work
