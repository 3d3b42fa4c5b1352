"""One rotation at a time: the home's file lock (real processes), PostgreSQL's advisory lock."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from authsvc.home.opened import Home, open_home
from authsvc.init.steps import initialize_home
from authsvc.rotation.ca_rollover import ca_rotate
from authsvc.rotation.executor import rotate
from authsvc.rotation.lock import ADVISORY_KEY, LOCK_NAME, LockBusy
from authsvc.settings import settings_from_mapping
from pki.clock import FixedClock
from pki.rotation.rollover import Phase
from tests.conftest import run_cli
from tests.rotate.support import DAY, SCENARIO_DAY, T0, TEMPLATE_SETTINGS, assert_nothing_lost, busy_home, copy_home

NOW = T0 + SCENARIO_DAY * DAY
# Another process that takes the lock the way rotate does and holds it until its stdin closes.
HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
os.ftruncate(fd, 0)
os.write(fd, f"{os.getpid()} holder\\n".encode())
print("locked", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def holder(tmp_path: Path) -> Callable[[Path], subprocess.Popen[str]]:
    started: list[subprocess.Popen[str]] = []

    def start(home: Path) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(home / LOCK_NAME)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        return proc

    yield start  # type: ignore[misc]
    for proc in started:
        if proc.poll() is None:
            proc.stdin.close()  # type: ignore[union-attr]
            proc.wait(timeout=10)


def authsvc(home: Path, *args: str, now: str = NOW.isoformat()) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "authsvc.cli", "--home", str(home), "--now", now, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_second_run_gives_up_after_the_timeout_naming_the_holder(
    home_copy: Callable[..., Home], holder: Callable[[Path], subprocess.Popen[str]]
) -> None:
    home = home_copy(rotation={"lock_timeout": 0.3})
    other = holder(home.root)
    result = run_cli(["--now", T0.isoformat(), "rotate"], home=home.root)
    assert result.exit_code == 1
    assert f"(pid {other.pid} holder)" in result.stderr and "rotation.lock_timeout" in result.stderr
    with pytest.raises(LockBusy, match=f"pid {other.pid}"):
        ca_rotate(home, Phase.PREPARE, "ca")  # a CA rollover takes the same lock
    other.stdin.close()  # type: ignore[union-attr]
    other.wait(timeout=10)
    assert run_cli(["--now", T0.isoformat(), "rotate"], home=home.root).exit_code == 0  # the twin: released


def test_a_second_run_waits_for_the_first(
    home_copy: Callable[..., Home], holder: Callable[[Path], subprocess.Popen[str]]
) -> None:
    home = home_copy(rotation={"lock_timeout": "60s"})
    other = holder(home.root)
    waiting = authsvc(home.root, "rotate", now=T0.isoformat())
    with pytest.raises(subprocess.TimeoutExpired):
        waiting.wait(timeout=1.5)  # it cannot finish while the lock is held
    other.stdin.close()  # type: ignore[union-attr]
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, err
    assert "planned 0" in out


def test_two_concurrent_runs_do_the_work_once_and_leave_the_home_consistent(
    rotate_template: Path, tmp_path: Path
) -> None:
    home = busy_home(copy_home(rotate_template, tmp_path / "home", FixedClock(T0), rotation={"lock_timeout": "60s"}))
    runs = [authsvc(home.root, "rotate", "-o", "json") for _ in range(2)]
    reports = []
    for run in runs:
        out, err = run.communicate(timeout=120)
        assert run.returncode == 3, err  # both finish: the person's certificate near expiry is reported
        reports.append(json.loads(out)["summary"])
    assert sorted(r["done"] for r in reports) == [0, 18]  # 15 renewals, key activation, CRL, prune: once
    assert_nothing_lost(open_home(home.root, clock=FixedClock(NOW), environ={}), NOW)


@pytest.mark.postgres
def test_replicas_on_postgresql_share_an_advisory_lock(
    rotate_template: Path, tmp_path: Path, postgres_url: str
) -> None:
    settings = settings_from_mapping(
        {**TEMPLATE_SETTINGS, "database": {"url": postgres_url}, "rotation": {"lock_timeout": 0.3}}
    )
    home = initialize_home(tmp_path / "home", settings, clock=FixedClock(T0), environ={}).home
    with _held_advisory_lock(postgres_url) as backend_pid, pytest.raises(LockBusy, match=f"backend pid {backend_pid}"):
        rotate(home)
    assert rotate(home).exit_code == 0  # the twin: released
    shutil.rmtree(tmp_path / "home")


@contextmanager
def _held_advisory_lock(url: str) -> Iterator[int]:
    """Another session holding rotate's advisory lock; yields its backend pid."""
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_KEY,))
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        yield int(row[0])
