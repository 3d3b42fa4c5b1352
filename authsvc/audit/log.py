"""The audit trail's writer: whole JSON lines appended to `audit.path`, never a secret.

Lines are written in batches (`audit.flush_ms`, default 200 ms, and when the process ends) by
a thread of each server worker: a write(2) per request on one file shared by the workers
serialises them on the file's lock, and measured (bench notes in docs/webhook.md) it halved the
webhook's throughput. `flush_ms: 0`, and every command-line process (`AuditLog.open(...,
batched=False)`: a command writes a few lines and must not leave them to a thread), write
each line at once. Either way each write(2) holds whole lines and at most PIPE_BUF bytes, on
a file opened O_APPEND, so lines from threads, worker processes and commands never
interleave, on a file or a pipe.

The TokenReview line is the hot path: its members are rendered once per cached answer
(authsvc/webhook/audit.py) and a line only adds the time, the client and whether the answer
came from the cache (`tokenreview`); the time's text is kept for the millisecond it names
(`datetime.isoformat` costs 1 µs, a quarter of a cached review, and at thousands of
reviews a second most lines share their millisecond with the one before). Everything else
goes through `record(when, event)`, with the same time text (a server issuing tokens writes a
line per token).
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import os
import select
import threading
from collections.abc import Iterable
from pathlib import Path

from authsvc.audit.events import ENCODER, LOGIN, AuditEvent, timestamp
from authsvc.settings.audit import AuditSettings

log = logging.getLogger(__name__)

STDERR_FD = 2
# Pending lines past this are written by the request that queues one more (memory stays bounded).
MAX_PENDING = 4096


class AuditLog:
    def __init__(self, fd: int | None, *, owned: bool = False, flush_seconds: float = 0.0) -> None:
        # fd None: auditing is off (every call is a no-op).
        self._fd = fd
        self._owned = owned
        self._pending: collections.deque[bytes] = collections.deque()
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._batched = fd is not None and flush_seconds > 0
        # (millisecond since the epoch, time zone, its ISO text) of the last TokenReview line.
        self._last_time: tuple[int, dt.tzinfo | None, str] = (-1, None, "")
        if self._batched:
            # Not a daemon: the interpreter (and multiprocessing, in granian's workers) joins it at
            # exit, after the main thread has ended, so the last batch is written on a stop.
            threading.Thread(target=self._flush_until_exit, args=(flush_seconds,), name="audit-flush").start()

    @classmethod
    def open(cls, settings: AuditSettings, home_root: Path, *, batched: bool = True) -> AuditLog:
        """The configured trail; `batched=False` writes each line at once whatever `flush_ms` says."""
        if not settings.enabled:
            return cls(None)
        flush_seconds = settings.flush_ms / 1000 if batched else 0.0
        if settings.path == "-":
            # File descriptor 2 itself: sys.stderr may be replaced by something without one.
            return cls(STDERR_FD, flush_seconds=flush_seconds)
        path = home_root / settings.path
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return cls(fd, owned=True, flush_seconds=flush_seconds)

    @property
    def enabled(self) -> bool:
        return self._fd is not None

    def record(self, when: dt.datetime, event: AuditEvent) -> None:
        """One line for `event` at `when`."""
        if self._fd is None:
            return
        self._queue(f'{{"time":"{self._time_text(when, when.timestamp())}",{event.members()}}}\n'.encode())

    def tokenreview(self, when: dt.datetime, epoch: float, members: str, client: str, cached: bool) -> None:
        """One TokenReview line: `members` pre-rendered (authsvc.webhook.audit.tokenreview_members);
        `epoch` is `when.timestamp()`, which the reviewer has computed already."""
        if self._fd is None:
            return
        self._queue(
            f'{{"time":"{self._time_text(when, epoch)}",{members},"client":{ENCODER.encode(client)},'
            f'"cached":{"true" if cached else "false"}}}\n'.encode()
        )

    def _time_text(self, when: dt.datetime, epoch: float) -> str:
        """`timestamp(when)`, made once per millisecond (`epoch` is `when.timestamp()`)."""
        millis, zone = int(epoch * 1000), when.tzinfo
        last = self._last_time
        if last[0] == millis and last[1] is zone:
            return last[2]
        text = timestamp(when)
        self._last_time = (millis, zone, text)
        return text

    def login(self, when: dt.datetime, *, result: str, user: str, backend: str, reason: str, client: str) -> None:
        """One line about a /login attempt: "ok", "refused" (with the reason), "rate_limited" or "unavailable"."""
        details = {"backend": backend, "client": client}
        self.record(when, AuditEvent(LOGIN, result, actor=user, subject=user, reason=reason, details=details))

    def _queue(self, line: bytes) -> None:
        if not self._batched:
            self._write([line])
            return
        self._pending.append(line)  # deque.append and popleft are atomic: no lock on the hot path
        if len(self._pending) > MAX_PENDING:
            self.flush()

    def flush(self) -> None:
        lines = []
        while True:
            try:
                lines.append(self._pending.popleft())
            except IndexError:
                break
        if lines:
            self._write(lines)

    def close(self) -> None:
        self._stop.set()
        self.flush()
        if self._owned and self._fd is not None:
            os.close(self._fd)
        self._fd = None

    def _flush_until_exit(self, seconds: float) -> None:
        main = threading.main_thread()
        while not self._stop.is_set() and main.is_alive():
            main.join(seconds)
            self._flush_reporting_errors()
        self._flush_reporting_errors()

    def _flush_reporting_errors(self) -> None:
        try:
            self.flush()
        except OSError as e:
            log.error("audit log write failed: %s", e.strerror)

    def _write(self, lines: Iterable[bytes]) -> None:
        fd = self._fd
        if fd is None:
            return
        with self._write_lock:
            for chunk in _chunks(lines, select.PIPE_BUF):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]


def _chunks(lines: Iterable[bytes], limit: int) -> Iterable[bytes]:
    """Whole lines joined into writes of at most `limit` bytes (a longer line goes alone)."""
    batch: list[bytes] = []
    size = 0
    for line in lines:
        if batch and size + len(line) > limit:
            yield b"".join(batch)
            batch, size = [], 0
        batch.append(line)
        size += len(line)
    if batch:
        yield b"".join(batch)
