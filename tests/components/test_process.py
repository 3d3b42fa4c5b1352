"""The lifecycle every component shares (process.py): readiness, port ownership, a stop that
leaves nothing behind, freeze. Small Python children stand in for the servers."""

from __future__ import annotations

import signal
import socket
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from .process import ChildProcess, PortInUse, ProcessError, family, on_free_ports, processes_in_group
from .support import free_port, free_ports

# Listens on argv[1] (SO_REUSEPORT when argv[2] says so), then waits to be stopped.
LISTENER = textwrap.dedent(
    """
    import socket, sys, time
    sock = socket.socket()
    if len(sys.argv) > 2:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", int(sys.argv[1])))
    sock.listen()
    print("listening", flush=True)
    time.sleep(600)
    """
)


def listener(port: int, *, reuse_port: bool = False) -> list[str]:
    return [sys.executable, "-c", LISTENER, str(port), *(["reuse"] if reuse_port else [])]


@pytest.fixture
def child(tmp_path: Path) -> Iterator[ChildProcess]:
    process = ChildProcess("child", tmp_path / "child.log", start_timeout=20)
    yield process
    process.stop()


@pytest.fixture
def squatter() -> Iterator[socket.socket]:
    """Someone else listening on a port first."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", free_port()))
        sock.listen()
        yield sock


def test_free_ports_are_distinct_outside_the_kernels_range_and_never_handed_out_twice() -> None:
    low, high = (int(v) for v in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    first, second = free_ports(20), free_ports(20)
    assert len(set(first + second)) == 40
    assert not [p for p in first + second if low <= p <= high]


def test_start_returns_once_its_own_process_listens(child: ChildProcess) -> None:
    port = free_port()
    child.start(listener(port), ports=[port])
    assert child.running and child.listens(port)
    assert "listening" in child.log_tail() and f"start: {sys.executable}" in child.log_tail()


def test_a_port_held_by_someone_else_is_not_taken_for_ours(child: ChildProcess, squatter: socket.socket) -> None:
    """The twin: the port answers, but not from the process started (it fails to bind)."""
    port = squatter.getsockname()[1]
    with pytest.raises(PortInUse, match=f"port {port}"):
        child.start(listener(port), ports=[port])
    assert not child.running


def test_a_port_shared_with_someone_else_is_refused(child: ChildProcess, squatter: socket.socket) -> None:
    """Both listen (SO_REUSEPORT): clients would reach either, so it is not ready."""
    port = squatter.getsockname()[1]
    with pytest.raises(PortInUse, match=f"port {port}: pid"):
        child.start(listener(port, reuse_port=True), ports=[port])
    assert not child.running


def test_a_taken_port_is_chosen_again(child: ChildProcess, squatter: socket.socket) -> None:
    ports = [squatter.getsockname()[1]]

    def pick_new_port() -> None:
        ports[0] = free_port()

    on_free_ports(lambda: child.start(listener(ports[0]), ports=ports), pick_new_port)
    assert ports[0] != squatter.getsockname()[1] and child.listens(ports[0])
    child.stop()
    with pytest.raises(PortInUse):  # a port fixed by the caller is not changed
        taken = squatter.getsockname()[1]
        on_free_ports(lambda: child.start(listener(taken), ports=[taken]), None)


def test_an_exit_during_startup_names_the_code_and_shows_the_log(child: ChildProcess) -> None:
    with pytest.raises(ProcessError, match=r"exited with code 3 during startup(.|\n)*bad config"):
        child.start([sys.executable, "-c", "print('bad', 'config'); raise SystemExit(3)"], ready=lambda: "waiting")


def test_not_ready_in_time_says_what_was_missing(tmp_path: Path) -> None:
    child = ChildProcess("child", tmp_path / "child.log", start_timeout=0.3)
    with pytest.raises(ProcessError, match=r"not ready after .*still no answer"):
        child.start([sys.executable, "-c", "import time; time.sleep(60)"], ready=lambda: "still no answer")
    assert not child.running


def test_stop_leaves_no_process_of_the_group_behind(child: ChildProcess) -> None:
    """A grandchild that ignores SIGTERM (a backend, a worker) is killed and waited for too."""
    program = "import os, signal, time\nif os.fork() == 0:\n    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    program += "    print('fork' 'ed', flush=True)\ntime.sleep(60)\n"
    child.start([sys.executable, "-c", program], ready=lambda: None if "forked" in child.log_tail() else "no fork")
    pgid = child.popen.pid
    assert len(processes_in_group(pgid)) == 2
    child.stop(timeout=5)
    assert processes_in_group(pgid) == [] and not child.running


@pytest.mark.parametrize("end", ["stop", "kill"])
def test_a_descendant_in_a_session_of_its_own_is_ended_too(child: ChildProcess, end: str) -> None:
    """As PostgreSQL's backends are: each calls setsid(), so the leader's group misses them, and
    one left attached to the old shared memory makes the next start fail."""
    program = textwrap.dedent(
        """
        import os, signal, time
        if os.fork() == 0:
            os.setsid()
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            print("own" "session", flush=True)
        time.sleep(60)
        """
    )
    child.start([sys.executable, "-c", program], ready=lambda: None if "ownsession" in child.log_tail() else "no fork")
    members = family(child.popen.pid)
    assert len(members) == 2 and len(processes_in_group(child.popen.pid)) == 1
    (child.stop if end == "stop" else child.kill)()
    assert not [pid for pid in members if Path(f"/proc/{pid}").exists() and "State:\tZ" not in status(pid)]


def status(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return "State:\tZ (gone)"


def test_the_stop_signal_is_graceful_first(child: ChildProcess) -> None:
    program = textwrap.dedent(
        """
        import signal, sys, time
        signal.signal(signal.SIGINT, lambda *_: (print("by" "e", flush=True), sys.exit(0)))
        print("u" "p", flush=True)
        time.sleep(60)
        """
    )
    child.start([sys.executable, "-c", program], ready=lambda: None if "up" in child.log_tail().split() else "down")
    child.stop(sig=signal.SIGINT)
    assert child.log_tail().splitlines()[-1] == "bye"


def test_freeze_stops_every_thread_and_thaw_resumes(child: ChildProcess) -> None:
    port = free_port()
    child.start(listener(port), ports=[port])
    child.freeze()
    assert child.frozen
    status = Path(f"/proc/{child.pid}/status").read_text()
    assert "State:\tT" in status
    child.thaw()
    assert not child.frozen and "State:\tT" not in Path(f"/proc/{child.pid}/status").read_text()
    child.freeze()
    child.stop(timeout=5)  # thaws first
    assert not child.running


def test_restart_runs_the_same_command_again(child: ChildProcess) -> None:
    port = free_port()
    child.start(listener(port), ports=[port])
    first = child.pid
    child.restart()
    assert child.pid != first and child.listens(port)
    assert child.log_tail().count("start:") == 2
