"""Helpers shared by the component fixtures: loopback ports, binaries, skip-or-fail rule."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

__all__ = [
    "eventually",
    "find_binary",
    "free_port",
    "is_ci",
    "log_tail",
    "postgres_bindir",
    "require_binary",
    "wait_for_port",
]

# Folders searched after $PATH: sbin folders are often missing from a non-root PATH, and
# Debian keeps the PostgreSQL server binaries in a versioned folder that is never on PATH.
_EXTRA_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin")


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that was free a moment ago (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    """Block until a TCP connect to ``host:port`` succeeds; ``TimeoutError`` otherwise."""
    deadline = time.monotonic() + timeout
    last: OSError | None = None
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{host}:{port} not accepting connections after {timeout}s: {last}")
        time.sleep(0.02)


def postgres_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<ver>/bin`` holding a ``postgres`` binary, or None."""
    candidates: list[tuple[float, Path]] = []
    for path in glob.glob("/usr/lib/postgresql/*/bin/postgres"):
        version = Path(path).parent.parent.name
        try:
            key = float(version)
        except ValueError:
            continue
        candidates.append((key, Path(path).parent))
    if not candidates:
        return None
    return max(candidates)[1]


def find_binary(name_or_path: str) -> Path | None:
    """Locate an executable by absolute path, on $PATH, in sbin folders, or (for the
    PostgreSQL server tools) in Debian's ``/usr/lib/postgresql/<ver>/bin``."""
    if os.sep in name_or_path:
        path = Path(name_or_path)
        return path if path.is_file() and os.access(path, os.X_OK) else None
    found = shutil.which(name_or_path)
    if found:
        return Path(found)
    for folder in _EXTRA_DIRS:
        path = Path(folder) / name_or_path
        if path.is_file() and os.access(path, os.X_OK):
            return path
    bindir = postgres_bindir()
    if bindir is not None:
        path = bindir / name_or_path
        if path.is_file() and os.access(path, os.X_OK):
            return path
    return None


def is_ci() -> bool:
    """True when the environment variable CI is ``true`` (any case) or ``1``."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1"}


def require_binary(name_or_path: str, packages: str = "slapd ldap-utils postgresql") -> Path:
    """Return the binary's path; if it is missing, FAIL the test under ``CI=true``
    (a CI image that lacks it is broken) and skip it elsewhere, with the reason.
    ``packages``: the Debian packages the message tells to install."""
    path = find_binary(name_or_path)
    if path is not None:
        return path
    import pytest  # imported lazily: the component classes themselves do not need pytest

    message = (
        f"required binary {name_or_path!r} not found (searched $PATH, "
        f"{', '.join(_EXTRA_DIRS)}, /usr/lib/postgresql/*/bin); "
        f"install it, e.g. apt-get install {packages} (scripts/system-deps.sh)"
    )
    if is_ci():
        pytest.fail(f"CI=true: {message}", pytrace=False)
    pytest.skip(message)
    raise AssertionError("unreachable")  # pytest.skip raises; keeps type checkers happy


def log_tail(path: Path, lines: int = 40) -> str:
    """Last ``lines`` lines of a log file (for error messages), or a note that it is absent."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<no log at {path}: {exc}>"
    tail = text.splitlines()[-lines:]
    return "\n".join(tail) if tail else "<log is empty>"


T = TypeVar("T")


def eventually(attempt: Callable[[], T], done: Callable[[T], bool], *, timeout: float, interval: float = 0.2) -> T:
    """Call `attempt` until `done(result)` or `timeout` seconds; the last result either way (a
    deadline for something that takes a moment: a re-read, a snapshot, a shutdown; never a sleep
    standing in for expiry)."""
    deadline = time.monotonic() + timeout
    while True:
        result = attempt()
        if done(result) or time.monotonic() >= deadline:
            return result
        time.sleep(interval)
