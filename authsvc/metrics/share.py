"""Counters summed over every process of one `authsvc serve`, through a directory of snapshots.

`authsvc serve` runs several processes that count: the webhook listener's granian workers and
the public listener's. A scrape of /metrics reaches one of them. So that every answer is the
run's total, `serve` makes a private directory for the run (authsvc/cli/serve.py) and each
process's metrics (authsvc/metrics/server.py) publish a snapshot of their counters into it:

    <dir>/<pid>-<random>.json    {"samples": [[family, [label values], value], ...]}

written whole (temp file + rename: a reader sees the old snapshot or the new one, never part of
one; no fsync, it is not durable state) by a thread of each process at most every second and
only when a counter moved, when the process ends, and by the process answering a scrape just
before it answers. An answer is its own counts, just published, plus every other snapshot in
the directory, including those of processes that have exited, so totals never go down.

Monotonic across scrapes, whichever process answers: an answer only ever reports values that
are in a snapshot file, and files only grow. (Adding a process's live counters to the others'
files would not do: the next answer, from another worker, could see an older file of it.) The
price is a lag: another process's counts appear up to a second late (`PUBLISH_SECONDS`). A
process killed outright (SIGKILL, OOM) loses what it counted since its last snapshot (counts
that no answer has shown, so none goes down); one that stops normally writes a last one.

Nothing here is on the request path: the counters themselves stay plain ints under one lock.
"""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# (family, label values) -> value. Counters are ints; a histogram's sum is a float.
Counts = dict[tuple[str, tuple[str, ...]], float]
PUBLISH_SECONDS = 1.0
SUFFIX = ".json"


class SnapshotShare:
    """This process's snapshot file in the run's directory, and everyone else's."""

    def __init__(self, directory: Path, name: str | None = None) -> None:
        self.directory = directory
        # The pid helps whoever looks at the directory; the random part keeps a reused pid
        # from replacing the snapshot of an exited process.
        self.name = name or f"{os.getpid()}-{secrets.token_hex(4)}{SUFFIX}"
        self._lock = threading.Lock()  # one publisher at a time, so files only grow
        self._published: Counts = {}  # nothing counted: nothing to write

    def publish(self, counts: Callable[[], Counts]) -> Counts:
        """Take `counts()` and write them as this process's snapshot unless unchanged; return them.

        Counting and writing happen under one lock: a snapshot taken earlier can never be
        written after one taken later. Write errors are logged, not raised (a scrape or a worker
        must not fail because of them).
        """
        with self._lock:
            taken = counts()
            if taken != self._published:
                try:
                    write_snapshot(self.directory / self.name, taken)
                except OSError as e:
                    log.warning("metrics snapshot not written to %s: %s", self.directory, e.strerror or e)
                else:
                    self._published = taken
            return taken

    def others(self) -> list[Counts]:
        """Every other process's latest snapshot; unreadable or malformed files are skipped."""
        try:
            names = sorted(entry.name for entry in os.scandir(self.directory) if _is_snapshot(entry.name))
        except OSError as e:
            log.warning("metrics snapshots not read from %s: %s", self.directory, e.strerror or e)
            return []
        snapshots = (read_snapshot(self.directory / name) for name in names if name != self.name)
        return [snapshot for snapshot in snapshots if snapshot is not None]

    def merged(self, counts: Callable[[], Counts]) -> Counts:
        """The run's totals: this process's counts (published first, see the module docstring)
        plus every other snapshot."""
        own = self.publish(counts)
        return merge([own, *self.others()])

    def publish_until_exit(self, counts: Callable[[], Counts], seconds: float = PUBLISH_SECONDS) -> threading.Thread:
        """Publish every `seconds` (when something changed) from a thread, and once more at exit."""
        # Not a daemon: the interpreter (and multiprocessing, in granian's workers) joins it at
        # exit, after the main thread has ended, so the last counts are written on a stop.
        thread = threading.Thread(target=self._publish_loop, args=(counts, seconds), name="metrics-snapshot")
        thread.start()
        return thread

    def _publish_loop(self, counts: Callable[[], Counts], seconds: float) -> None:
        main = threading.main_thread()
        running = True
        while running:
            main.join(seconds)
            # Looked at before the counts are taken: the process may count and end while a
            # publish runs, so the last one must start after the end, not merely follow it.
            running = main.is_alive()
            self.publish(counts)


def merge(snapshots: Iterable[Counts]) -> Counts:
    """Sum per sample. fsum is exact before rounding: the order the files were read in cannot
    change a float sum, so two answers from the same snapshots are equal to the last bit."""
    values: dict[tuple[str, tuple[str, ...]], list[float]] = {}
    for snapshot in snapshots:
        for key, value in snapshot.items():
            values.setdefault(key, []).append(value)
    return {key: math.fsum(parts) for key, parts in values.items()}


def write_snapshot(path: Path, counts: Counts) -> None:
    """Replace `path` whole: written to a temp file beside it, then renamed over it."""
    document = {"samples": [[family, list(labels), value] for (family, labels), value in sorted(counts.items())]}
    data = json.dumps(document, separators=(",", ":")).encode()
    temporary = path.with_name(f".{path.name}.tmp")  # one per process: publishers take a lock
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    try:
        temporary.replace(path)
    except OSError:
        temporary.unlink(missing_ok=True)
        raise


def read_snapshot(path: Path) -> Counts | None:
    """A snapshot file's counts, or None (logged) when it cannot be read or is not one."""
    try:
        document = json.loads(path.read_bytes())
        return parse_samples(document["samples"])
    except (OSError, ValueError, TypeError, KeyError) as e:
        log.warning("metrics snapshot %s ignored: %s", path.name, type(e).__name__)
        return None


def parse_samples(samples: Any) -> Counts:
    """Raises ValueError or TypeError unless every sample is [str, [str, ...], finite number >= 0]."""
    if not isinstance(samples, list):
        raise TypeError("samples is not a list")
    counts: Counts = {}
    for sample in samples:
        family, labels, value = sample
        if not isinstance(family, str) or not isinstance(labels, list) or not all(isinstance(v, str) for v in labels):
            raise TypeError("a sample is not [family, [label values], value]")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise ValueError("a sample's value is not a finite count")
        counts[(family, tuple(labels))] = float(value)
    return counts


def _is_snapshot(name: str) -> bool:
    return name.endswith(SUFFIX) and not name.startswith(".")
