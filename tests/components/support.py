"""Helpers shared by the component fixtures: loopback ports, binaries, skip-or-fail rule, `eventually`."""

from __future__ import annotations

import glob
import os
import random
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
    "free_ports",
    "is_ci",
    "log_tail",
    "postgres_bindir",
    "require_binary",
    "wait_for_port",
]

# Folders searched after $PATH: sbin folders are often missing from a non-root PATH, and
# Debian keeps the PostgreSQL server binaries in a versioned folder that is never on PATH.
_EXTRA_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin")


def _ports_the_kernel_never_picks() -> list[range]:
    """Ports outside the ephemeral range (ip_local_port_range): the kernel gives those to every
    bind(0) and every outgoing connection of every process on the machine, so a port found free
    there can be taken by anyone a moment later. Outside it, only an explicit bind can."""
    try:
        low, high = (int(v) for v in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        return []
    ranges = [range(_LOWEST_PORT, low), range(high + 1, 65536)]
    return [r for r in ranges if len(r) >= 1000]


_LOWEST_PORT = 15000  # below: ports that services on a developer's machine often hold
_HANDED_OUT: set[int] = set()  # never the same port twice in a run: a stopped server may come back
# Not the module `random`: a test that seeds it would make every run pick the same ports.
_RANDOM = random.SystemRandom()


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct TCP ports on `host` that are free now, outside the kernel's ephemeral
    range when it leaves room (so no other process is given them by chance), never one this
    process handed out before. Still a race with explicit binds: `tests.components.process`
    checks that the process it starts is the one listening."""
    ranges = _ports_the_kernel_never_picks()
    chosen: list[int] = []
    held: list[socket.socket] = []
    try:
        for _ in range(200 * count):
            if len(chosen) == count:
                break
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # no SO_REUSEADDR: TIME_WAIT counts as taken
            port = _RANDOM.choice(_RANDOM.choice(ranges)) if ranges else 0
            try:
                sock.bind((host, port))
            except OSError:
                sock.close()
                continue
            port = int(sock.getsockname()[1])
            if port in _HANDED_OUT:
                sock.close()
                continue
            held.append(sock)  # held until all are chosen, so they are distinct
            chosen.append(port)
    finally:
        for sock in held:
            sock.close()
    if len(chosen) < count:
        raise OSError(f"no {count} free TCP ports on {host}")
    _HANDED_OUT.update(chosen)
    return chosen


def free_port(host: str = "127.0.0.1") -> int:
    """One port as `free_ports` chooses them."""
    return free_ports(1, host)[0]


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    """Block until a TCP connect to ``host:port`` succeeds; ``TimeoutError`` otherwise."""

    def connect() -> OSError | None:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return None
        except OSError as exc:
            return exc

    last = eventually(connect, lambda error: error is None, timeout=timeout, interval=0.02)
    if last is not None:
        raise TimeoutError(f"{host}:{port} not accepting connections after {timeout}s: {last}")


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
