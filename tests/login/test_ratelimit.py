"""Failed-login limits in the shared database: SQLite and a real PostgreSQL, two "replicas"."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, func, select

from authsvc.db.schema import open_engine
from authsvc.db.tables import LOGIN_FAILURES
from authsvc.errors import BackendUnavailable, RateLimited
from authsvc.login.ratelimit import Limit, RateLimiter, limit_key
from pki.clock import FixedClock
from pki.db import make_engine

WINDOW = dt.timedelta(minutes=15)


@pytest.fixture
def engines(database_url: str) -> Iterator[tuple[Engine, Engine]]:
    """Two engines on one database: two authsvc replicas."""
    first, second = open_engine(database_url), open_engine(database_url)
    yield first, second
    first.dispose()
    second.dispose()


def _limiter(engine: Engine, clock: FixedClock, per_user: int = 3, per_address: int = 5) -> RateLimiter:
    return RateLimiter(engine, clock, user=Limit("user", per_user, WINDOW), address=Limit("addr", per_address, WINDOW))


def test_replicas_share_the_count(engines: tuple[Engine, Engine], clock: FixedClock) -> None:
    one, two = (_limiter(engine, clock) for engine in engines)
    one.record_failure("alice", "10.0.0.1")
    two.record_failure("Alice", "10.0.0.2")  # the same user for a directory
    one.check("alice", "10.0.0.3")
    two.record_failure("alice ", "10.0.0.4")
    with pytest.raises(RateLimited) as refused:
        one.check("alice", "10.0.0.5")
    assert refused.value.retry_after == WINDOW.total_seconds()
    assert "user" in str(refused.value)
    two.check("bob", "10.0.0.5")  # other users are not affected


def test_the_window_ends_and_a_success_clears_the_user_only(engines: tuple[Engine, Engine], clock: FixedClock) -> None:
    limiter = _limiter(engines[0], clock, per_user=2, per_address=2)
    for _ in range(2):
        limiter.record_failure("bob", "10.0.0.9")
    clock.advance(WINDOW - dt.timedelta(seconds=30))
    with pytest.raises(RateLimited) as refused:
        limiter.check("bob", "")
    assert refused.value.retry_after == 30
    clock.advance(dt.timedelta(seconds=31))
    limiter.check("bob", "")
    limiter.record_failure("bob", "10.0.0.9")  # a new window: count 1
    limiter.check("bob", "")
    limiter.record_success("bob")
    limiter.record_failure("carol", "10.0.0.9")  # the address count (2) is not cleared by bob's success
    with pytest.raises(RateLimited, match="client address"):
        limiter.check("dave", "10.0.0.9")


def test_concurrent_failures_are_all_counted(engines: tuple[Engine, Engine], clock: FixedClock) -> None:
    limiters = [_limiter(engine, clock, per_user=1000) for engine in engines]
    threads = [
        threading.Thread(target=lambda lim=lim: [lim.record_failure("eve", "") for _ in range(20)]) for lim in limiters
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with engines[0].connect() as conn:
        count = conn.execute(select(LOGIN_FAILURES.c.failures).where(LOGIN_FAILURES.c.key == limit_key("user", "eve")))
        assert count.scalar_one() == 40


def test_expired_rows_are_pruned(engines: tuple[Engine, Engine], clock: FixedClock) -> None:
    limiter = _limiter(engines[0], clock)
    for n in range(5):
        limiter.record_failure(f"user{n}", f"10.9.0.{n}")
    clock.advance(WINDOW * 2)
    limiter.record_failure("later", "")
    with engines[0].connect() as conn:
        assert conn.execute(select(func.count()).select_from(LOGIN_FAILURES)).scalar_one() == 1


def test_keys_hash_whatever_was_typed() -> None:
    assert limit_key("user", "Alice  Smith") == limit_key("user", "alice smith")
    assert limit_key("user", "alice") != limit_key("addr", "alice")
    assert len(limit_key("user", "x" * 10_000)) == 64
    assert len(limit_key("user", "\udcff\x00")) == 64  # undecodable input still hashes


def test_an_unreachable_database_fails_closed(tmp_path: object, clock: FixedClock) -> None:
    limiter = _limiter(make_engine("sqlite:////nonexistent-folder/authsvc.db"), clock)
    with pytest.raises(BackendUnavailable):
        limiter.check("alice", "10.0.0.1")
    with pytest.raises(BackendUnavailable):
        limiter.record_failure("alice", "10.0.0.1")
