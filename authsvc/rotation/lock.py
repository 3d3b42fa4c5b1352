"""One rotation at a time: a file lock in the home, plus a PostgreSQL advisory lock when the
inventory is shared by replicas (their rotate jobs run on other machines, with other homes).

A second run waits up to `rotation.lock_timeout` for the first, then gives up with exit 1 and
a message naming who holds the lock. Both locks belong to the process (flock) or the database
session (advisory): a run that crashes or is killed releases them, nothing is left to clean up.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from sqlalchemy import Connection, Engine, text

from authsvc.errors import AuthsvcError

LOCK_NAME = "rotate.lock"
# pg_try_advisory_lock takes a bigint: the first 8 bytes of a hash of the lock's name.
ADVISORY_KEY = int.from_bytes(hashlib.sha256(b"authsvc rotate").digest()[:8], "big", signed=True)
POLL_SECONDS = 0.1
HOLDER_BYTES = 256  # the holder's "PID command" line, padded


class LockBusy(AuthsvcError):
    """Another rotation holds the lock and did not release it within the timeout."""


def _describe_wait(timeout: dt.timedelta) -> str:
    return f"waited {int(timeout.total_seconds())}s (rotation.lock_timeout)"


def _poll(try_once: Callable[[], bool], timeout: dt.timedelta, sleep: Callable[[float], None]) -> bool:
    """Call `try_once` until it succeeds or `timeout` has passed (checked at least once)."""
    deadline = time.monotonic() + timeout.total_seconds()
    while not try_once():
        if time.monotonic() >= deadline:
            return False
        sleep(POLL_SECONDS)
    return True


@contextlib.contextmanager
def file_lock(
    path: Path, timeout: dt.timedelta, *, command: str = "authsvc rotate", sleep: Callable[[float], None] = time.sleep
) -> Iterator[None]:
    """flock(2) on `path` (created 0600); the holder writes its PID and command into it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:

        def try_once() -> bool:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        if not _poll(try_once, timeout, sleep):
            holder = path.read_text(encoding="utf-8", errors="replace").strip() or "unknown"
            raise LockBusy(
                f"another rotation holds {path} (pid {holder}); {_describe_wait(timeout)}: "
                "let it finish, or stop that process if it hangs"
            )
        # A fixed-size record overwritten in place: a truncate would cost a journal commit per run.
        os.pwrite(fd, f"{os.getpid()} {command}".encode()[: HOLDER_BYTES - 1].ljust(HOLDER_BYTES - 1) + b"\n", 0)
        yield
    finally:
        os.close(fd)  # releases the flock


@contextlib.contextmanager
def advisory_lock(
    engine: Engine, timeout: dt.timedelta, *, sleep: Callable[[float], None] = time.sleep
) -> Iterator[None]:
    """pg_try_advisory_lock on a connection of its own, held until the block ends."""
    with engine.connect() as connection:

        def try_once() -> bool:
            got = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_KEY}).scalar()
            connection.commit()  # the lock is the session's: no transaction stays open meanwhile
            return bool(got)

        if not _poll(try_once, timeout, sleep):
            raise LockBusy(
                f"another rotation holds the database's rotate lock ({_advisory_holder(connection)}); "
                f"{_describe_wait(timeout)}: let it finish (rotate runs on every replica's schedule share it)"
            )
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_KEY})
            connection.commit()


def _advisory_holder(connection: Connection) -> str:
    """Who holds the advisory lock: the PostgreSQL backend's pid, client address and application."""
    key = ADVISORY_KEY & 0xFFFFFFFFFFFFFFFF
    row = connection.execute(
        text(
            "SELECT a.pid, a.client_addr, a.application_name FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.classid = :high AND l.objid = :low AND l.objsubid = 1"
        ),
        {"high": key >> 32, "low": key & 0xFFFFFFFF},
    ).first()
    connection.rollback()
    if row is None:
        return "holder unknown"
    return f"PostgreSQL backend pid {row[0]}, client {row[1] or 'local socket'}"


@contextlib.contextmanager
def rotation_lock(
    root: Path, engine: Engine, database_url: str, timeout: dt.timedelta, *, command: str | None = None
) -> Iterator[None]:
    """The home's file lock, then (PostgreSQL) the database's advisory lock."""
    what = command or " ".join(["authsvc", *sys.argv[1:]])[:200]
    with file_lock(root / LOCK_NAME, timeout, command=what):
        if database_url.startswith("postgresql"):
            with advisory_lock(engine, timeout):
                yield
        else:
            yield
