"""The audit log: one JSON line per TokenReview decision, never the token (a hash prefix instead).

    {"time":"2030-01-01T00:00:00.000+00:00","decision":"allow","user":"alice","groups":["dev"],
     "backend":"tokenfile","token":"88ac3a398c5b","client":"10.0.0.1","cached":false}

one per attempt at POST /login, marked `"event":"login"` (a `result`, never a `decision`,
so that readers of review decisions do not count logins), with the reason the client is not told:

    {"time":"2030-01-01T00:00:00.000+00:00","event":"login","result":"refused","user":"dave",
     "backend":"ldap","reason":"account disabled (AD data 533)","client":"10.0.0.1"}

and, from `authsvc csr-signer`, one per CertificateSigningRequest decision (`"event":"csr"`):

    {"time":"2030-01-01T00:00:00.000+00:00","event":"csr","result":"failed","csr":"mallory",
     "signer":"kubernetes.io/kube-apiserver-client","requester":"admin","user":"mallory",
     "groups":["system:masters"],"reason":"IdentityNotAllowed","message":"group 'system:masters' is ..."}

The members that depend only on the decision are rendered once per cached answer
(`decision_fields`); a line adds the time, the client and whether it came from the cache.

Lines are written in batches (`audit.flush_ms`, default 200 ms, and when the process ends) by
a thread of each worker: a write(2) per request on one file shared by the workers serialises them on the
file's lock, and measured (bench notes in docs/webhook.md) it halved the webhook's throughput.
`flush_ms: 0` writes every line at once. Either way each write(2) holds whole lines and at most
PIPE_BUF bytes, on a file opened O_APPEND, so lines from threads and worker processes never
interleave, on a file or a pipe.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import logging
import os
import select
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from authsvc.identity import UserInfo
from authsvc.settings.audit import AuditSettings

log = logging.getLogger(__name__)

# Pending lines past this are written by the request that queues one more (memory stays bounded).
MAX_PENDING = 4096
_ENCODER = json.JSONEncoder(separators=(",", ":"))


def decision_fields(
    *, decision: str, user: UserInfo | None, backend: str, token_fingerprint: str, error: str | None = None
) -> str:
    """The members of an audit line about the decision itself (a JSON object without its braces)."""
    fields: dict[str, Any] = {
        "decision": decision,
        "user": user.username if user is not None else None,
        "groups": list(user.groups) if user is not None else [],
        "backend": backend,
        "token": token_fingerprint,
    }
    if error:
        fields["error"] = error
    return _ENCODER.encode(fields)[1:-1]


class AuditLog:
    def __init__(self, fd: int | None, *, owned: bool = False, flush_seconds: float = 0.0) -> None:
        # fd None: auditing is off (every call is a no-op).
        self._fd = fd
        self._owned = owned
        self._pending: collections.deque[bytes] = collections.deque()
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._batched = fd is not None and flush_seconds > 0
        if self._batched:
            # Not a daemon: the interpreter (and multiprocessing, in granian's workers) joins it at
            # exit, after the main thread has ended, so the last batch is written on a stop.
            threading.Thread(target=self._flush_until_exit, args=(flush_seconds,), name="audit-flush").start()

    @classmethod
    def open(cls, settings: AuditSettings, home_root: Path) -> AuditLog:
        if not settings.enabled:
            return cls(None)
        flush_seconds = settings.flush_ms / 1000
        if settings.path == "-":
            return cls(sys.stderr.fileno(), flush_seconds=flush_seconds)
        path = home_root / settings.path
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return cls(fd, owned=True, flush_seconds=flush_seconds)

    def decision(self, when: dt.datetime, fields: str, client: str, cached: bool) -> None:
        """One line: the time, `decision_fields(...)`, the client address, cache hit or not."""
        if self._fd is None:
            return
        line = (
            f'{{"time":"{when.isoformat(timespec="milliseconds")}",{fields},'
            f'"client":{_ENCODER.encode(client)},"cached":{"true" if cached else "false"}}}\n'
        ).encode()
        self._queue(line)

    def _queue(self, line: bytes) -> None:
        if not self._batched:
            self._write([line])
            return
        self._pending.append(line)  # deque.append and popleft are atomic: no lock on the hot path
        if len(self._pending) > MAX_PENDING:
            self.flush()

    def login(self, when: dt.datetime, *, result: str, user: str, backend: str, reason: str, client: str) -> None:
        """One line about a /login attempt: "ok", "refused" (with the reason) or "rate_limited"."""
        if self._fd is None:
            return
        fields = {"event": "login", "result": result, "user": user, "backend": backend, "reason": reason}
        line = f'{{"time":"{when.isoformat(timespec="milliseconds")}",{_ENCODER.encode(fields)[1:-1]},'
        self._queue(f'{line}"client":{_ENCODER.encode(client)}}}\n'.encode())

    def csr(self, when: dt.datetime, *, result: str, fields: dict[str, Any]) -> None:
        """One line about a CertificateSigningRequest decision of `authsvc csr-signer`: "signed",
        "failed" (refused by the policy), "approved" or "denied", with the request's name, signer,
        requester, subject, reason and, once signed, the certificate's serial."""
        if self._fd is None:
            return
        line = {"time": when.isoformat(timespec="milliseconds"), "event": "csr", "result": result, **fields}
        self._queue(f"{_ENCODER.encode(line)}\n".encode())

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
