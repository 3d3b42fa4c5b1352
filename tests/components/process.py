"""One long-running child process of a test, whatever it runs: the lifecycle every component shares.

slapd, PostgreSQL, Samba AD, etcd, kube-apiserver and `authsvc serve` each compose a `ChildProcess` and
keep only what is their own: their files, their command line, their readiness probe.

- `start(argv, ready=probe, ports=[...])` appends a header to the log and starts the command in
  a session of its own. Its *family* is the leader, its descendants and its process group
  (both: PostgreSQL's backends each call setsid(), and an orphan is no one's descendant). It
  returns once every port in `ports` is listened on by the family, by no other process, and
  `ready()` returns None (else it returns what is still missing, for the error message). A
  free port chosen earlier can be taken by someone else before the child binds it: then the
  child's "address already in use", or a foreign listener on the port, raises `PortInUse`, and
  a caller that chose the ports itself picks new ones (`on_free_ports`). Any other failure
  raises `ProcessError` with the log's last lines; nothing is left running.
- `stop()`: the graceful signal to the leader, then SIGKILL to whatever is left of the family,
  and returns once none of it is left (a server started next on the same data directory or
  ports never meets the previous one's leftovers, e.g. PostgreSQL's backends still attached to
  the old shared memory: "pre-existing shared memory block ... is still in use"). `kill()`
  crashes it the same way, at once.
- `restart()`, `freeze()`/`thaw()` (SIGSTOP/SIGCONT to the family; freeze returns once every
  thread is stopped), `pid`, `running`, `log_path`, `log_tail()`.

A new component is a class that holds one (samba_ad.py and slapd.py are real ones):

    class Kdc:
        def __init__(self, workdir: Path) -> None:
            self.port = free_port()
            self.process = ChildProcess("krb5kdc", workdir / "kdc.log")

        def start(self) -> None:
            def start_once() -> None:
                argv = ["krb5kdc", "-n", "-P", "kdc.pid", "-p", str(self.port)]
                self.process.start(argv, ready=self._answers, ports=[self.port])

            on_free_ports(start_once, self._pick_new_port)

        def _answers(self) -> str | None:
            ...  # None once it answers, else why not (shown if it never does)

Every started process is stopped at interpreter exit if a test did not; `kill_on_parent_exit`
also has the kernel kill it if the test process dies without running its exit handlers.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import subprocess
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .support import eventually, log_tail

__all__ = [
    "ChildProcess",
    "PortInUse",
    "ProcessError",
    "die_with_parent",
    "family",
    "listening_inodes",
    "on_free_ports",
    "processes_in_group",
    "socket_inodes",
]

START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
# What remains of a group after SIGKILL goes within milliseconds; a process in uninterruptible
# sleep (a disk) may take a moment longer.
KILL_TIMEOUT = 10.0
POLL = 0.02  # waiting for an exit: waitid(2), cheap
READY_POLL = 0.05  # waiting for readiness: /proc/net/tcp and a probe each time
IN_USE = "address already in use"  # errno 98 as slapd, PostgreSQL, Go and granian (Rust) print it
_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp


class ProcessError(RuntimeError):
    """The child could not be started (the message has the log's last lines)."""


class PortInUse(ProcessError):
    """A port the child was to listen on is held by another process."""


# --------------------------------------------------------------------------- /proc


def listening_inodes(port: int) -> set[int]:
    """Inodes of the TCP sockets listening on `port` (any address, IPv4 or IPv6), from /proc/net."""
    found: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            next(lines, None)  # the header
            for line in lines:
                fields = line.split()
                if fields[3] == _LISTEN and int(fields[1].rpartition(":")[2], 16) == port:
                    found.add(int(fields[9]))
    return found


def socket_inodes(pid: int) -> set[int]:
    """Inodes of the sockets `pid` has open (empty when it is gone or not ours to read)."""
    found: set[int] = set()
    with contextlib.suppress(OSError):
        for fd in os.scandir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(fd.path)
                if target.startswith("socket:["):
                    found.add(int(target[8:-1]))
    return found


@dataclass(frozen=True)
class _Proc:
    pid: int
    ppid: int
    pgid: int
    state: str
    start: int  # clock ticks after boot: with the pid, names one process even after pid reuse


def _processes() -> dict[int, _Proc]:
    """Every process /proc shows now, zombies included."""
    found = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                fields = Path(f"/proc/{entry.name}/stat").read_text().rpartition(")")[2].split()
            except OSError:  # gone meanwhile
                continue
            pid = int(entry.name)
            found[pid] = _Proc(pid, int(fields[1]), int(fields[2]), fields[0], int(fields[19]))
    return found


_DEAD = ("Z", "X")  # a zombie has let go of everything already (memory, sockets, shared memory)


def processes_in_group(pgid: int) -> list[int]:
    """The live processes of process group `pgid`."""
    return sorted(p.pid for p in _processes().values() if p.pgid == pgid and p.state not in _DEAD)


def family(leader: int) -> dict[int, int]:
    """{pid: start time} of the live processes that are `leader`, its descendants or in its
    process group. Both: PostgreSQL's backends each start a session of their own (the group
    misses them), and a child whose parent died is no one's descendant any more."""
    processes = _processes()
    children: dict[int, list[int]] = {}
    for process in processes.values():
        children.setdefault(process.ppid, []).append(process.pid)
    members = {p.pid for p in processes.values() if p.pgid == leader} | ({leader} & processes.keys())
    stack = list(members)
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in members:
                members.add(child)
                stack.append(child)
    return {pid: processes[pid].start for pid in members if processes[pid].state not in _DEAD}


def _alive(known: dict[int, int]) -> dict[int, int]:
    """Those of `known` still running (same pid, same start time, not a zombie)."""
    processes = _processes()
    return {
        pid: start
        for pid, start in known.items()
        if pid in processes and processes[pid].start == start and processes[pid].state not in _DEAD
    }


def _signal(pids: dict[int, int], sig: signal.Signals) -> None:
    for pid in _alive(pids):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _all_threads_stopped(pids: Sequence[int]) -> bool:
    """Whether the kernel reports every thread of `pids` as stopped (state T in /proc)."""
    states = []
    for pid in pids:
        for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
            with contextlib.suppress(OSError):  # a thread that just ended
                states.append(stat.read_text().rpartition(")")[2].split()[0])
    return bool(states) and all(state in ("T", "t") for state in states)


def _describe(pid: int) -> str:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        command = "?"
    return f"pid {pid} ({command[:120]})"


def _holders(inodes: set[int]) -> list[str]:
    """The processes holding these sockets, as far as /proc lets us see them."""
    holders = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and socket_inodes(int(entry.name)) & inodes:
            holders.append(_describe(int(entry.name)))
    return holders or ["a process this user cannot see"]


# --------------------------------------------------------------------------- children


def die_with_parent() -> None:
    """preexec_fn: SIGKILL the child when the thread that started it exits.

    Keeps stray servers from outliving a killed test run. Linux ties this to the starting
    *thread*: start the process from a thread that lives as long as it should (pytest fixtures
    run in the main thread).
    """
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


_LIVE: weakref.WeakSet[ChildProcess] = weakref.WeakSet()


@atexit.register
def _kill_leftovers() -> None:
    for child in list(_LIVE):
        with contextlib.suppress(Exception):  # best effort at interpreter exit
            child.stop(timeout=2.0)


@dataclass(frozen=True)
class _Launch:
    """What `start` was given, for `restart`."""

    argv: tuple[str, ...]
    ready: Callable[[], str | None] | None
    ports: tuple[int, ...]
    env: Mapping[str, str] | None
    cwd: Path | None
    user: int | None
    group: int | None


@dataclass(frozen=True)
class _Progress:
    ready: bool = False
    exited: bool = False
    detail: str = "not started yet"
    foreign: str = ""  # who else listens on a port of ours, when someone does


class ChildProcess:
    """One child process: start with a readiness check, stop (graceful, then SIGKILL to its
    family), restart, freeze/thaw, its log file. See the module's docstring."""

    def __init__(
        self,
        name: str,
        log_path: Path,
        *,
        stop_signal: signal.Signals = signal.SIGTERM,
        start_timeout: float = START_TIMEOUT,
        stop_timeout: float = STOP_TIMEOUT,
        kill_on_parent_exit: bool = False,
        poll_interval: float = READY_POLL,
    ) -> None:
        self.name = name
        self.poll_interval = poll_interval  # between readiness checks (a probe that costs more: longer)
        self.log_path = log_path  # may change between starts (kube-apiserver: one log per start)
        self.stop_signal = stop_signal
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.kill_on_parent_exit = kill_on_parent_exit
        self._popen: subprocess.Popen[bytes] | None = None
        self._launch: _Launch | None = None
        self._log_offset = 0
        self._frozen = False
        self._frozen_members: dict[int, int] = {}

    # ----------------------------------------------------------------- state

    @property
    def popen(self) -> subprocess.Popen[bytes]:
        if self._popen is None:
            raise ProcessError(f"{self.name} is not running")
        return self._popen

    @property
    def running(self) -> bool:
        """Started and not exited (an exited leader is not reaped here: its group id stays ours)."""
        popen = self._popen
        if popen is None or popen.returncode is not None:
            return False
        try:
            return os.waitid(os.P_PID, popen.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
        except ChildProcessError:  # reaped by someone who called popen.poll()
            return popen.poll() is None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None and self.running else None

    @property
    def frozen(self) -> bool:
        return self._frozen

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines)

    def _log_since_start(self) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._log_offset)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    def listens(self, port: int) -> bool:
        """Whether a process of this child's family listens on `port` (and nobody else does)."""
        return self._port_state(port) == (True, "")

    def _port_state(self, port: int) -> tuple[bool, str]:
        """(a process of ours listens on it, who else does: "" for nobody)."""
        listening = listening_inodes(port)
        if not listening or self._popen is None:
            return False, ""
        ours: set[int] = set()
        for pid in family(self._popen.pid):
            ours |= socket_inodes(pid)
        foreign = listening - ours
        return bool(listening & ours), ", ".join(_holders(foreign)) if foreign else ""

    # ----------------------------------------------------------------- start

    def start(
        self,
        argv: Sequence[str],
        *,
        ready: Callable[[], str | None] | None = None,
        ports: Sequence[int] = (),
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: int | None = None,
        group: int | None = None,
    ) -> None:
        """Start `argv`; return once it listens on every port in `ports` (and nobody else does)
        and `ready()` returns None. `PortInUse` or `ProcessError` otherwise, with nothing left
        running. `user`/`group`: run as that uid/gid (PostgreSQL refuses to run as root)."""
        if self.running:
            raise ProcessError(f"{self.name} is already running (pid {self.popen.pid})")
        self._end({})  # what an earlier run that died by itself may have left
        self._launch = _Launch(tuple(argv), ready, tuple(ports), env, cwd, user, group)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._log_offset = log.tell()
            log.write(f"\n=== {time.strftime('%H:%M:%S')} start: {' '.join(argv)}\n".encode())
            log.flush()
            self._popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(os.environ if env is None else env),
                cwd=cwd,
                start_new_session=True,  # its own process group: stop() reaches all it forks
                preexec_fn=die_with_parent if self.kill_on_parent_exit else None,
                user=user,
                group=group,
                extra_groups=[] if user is not None else None,
            )
        self._frozen = False
        _LIVE.add(self)
        try:
            self._wait_ready(ready, ports)
        except BaseException:
            self.kill()
            raise

    def _progress(self, ready: Callable[[], str | None] | None, ports: Sequence[int], owned: set[int]) -> _Progress:
        if not self.running:
            return _Progress(exited=True, detail="exited")
        for port in ports:
            if port in owned:  # checked once: it stays ours while the process lives
                continue
            ours, foreign = self._port_state(port)
            if foreign or not ours:
                who = f"held by {foreign}" if foreign else "nobody listens"
                return _Progress(detail=f"port {port}: {who}", foreign=foreign and f"port {port}: {foreign}")
            owned.add(port)
        if ready is None:
            return _Progress(ready=True)
        missing = ready()
        return _Progress(ready=missing is None, detail=missing or "")

    def _wait_ready(self, ready: Callable[[], str | None] | None, ports: Sequence[int]) -> None:
        def over(progress: _Progress) -> bool:
            # A foreign listener beside ours shares the port (SO_REUSEPORT): clients would meet either.
            shared = bool(progress.foreign) and any(self._port_state(p)[0] for p in ports)
            return progress.ready or progress.exited or shared

        owned: set[int] = set()
        progress = eventually(
            lambda: self._progress(ready, ports, owned), over, timeout=self.start_timeout, interval=self.poll_interval
        )
        if progress.ready:
            return
        popen = self.popen
        self.kill()
        log = self._log_since_start()
        where = f"log {self.log_path}:\n{self.log_tail()}"
        # Ours are gone: whoever listens on a port of ours now is someone else.
        held = [f"port {p}: {', '.join(_holders(listening_inodes(p)))}" for p in ports if listening_inodes(p)]
        if progress.foreign or held or IN_USE in log.lower():
            raise PortInUse(f"{self.name}: a port is in use ({'; '.join(held) or progress.detail}); {where}")
        if progress.exited:
            raise ProcessError(f"{self.name} exited with code {popen.returncode} during startup; {where}")
        raise ProcessError(f"{self.name} not ready after {self.start_timeout:.0f}s ({progress.detail}); {where}")

    def restart(self) -> None:
        """Stop, then start again with what the last `start` was given."""
        launch = self._launch
        if launch is None:
            raise ProcessError(f"{self.name} was never started")
        self.stop()
        self.start(
            launch.argv,
            ready=launch.ready,
            ports=launch.ports,
            env=launch.env,
            cwd=launch.cwd,
            user=launch.user,
            group=launch.group,
        )

    # ----------------------------------------------------------------- stop

    def send_signal(self, sig: signal.Signals) -> None:
        """`sig` to the leader only (as a container runtime or an operator's `kill PID` does)."""
        if self.running:
            self.popen.send_signal(sig)

    def stop(self, timeout: float | None = None, sig: signal.Signals | None = None) -> None:
        """`sig` (default: the stop signal) to the leader and up to `timeout` seconds for it to
        exit; then SIGKILL to whatever is left of it, its descendants and its process group.
        Returns once none of them is left."""
        if self._popen is None:
            return
        before: dict[int, int] = {}
        if self.running:
            if self._frozen:  # a stopped process acts on the signal only once it runs again
                self.thaw()
            before = family(self.popen.pid)  # once the leader is gone, its orphans are no one's children
            self.popen.send_signal(sig or self.stop_signal)
            eventually(
                lambda: self.running, lambda running: not running, timeout=timeout or self.stop_timeout, interval=POLL
            )
        self._end(before)

    def kill(self) -> None:
        """Crash: SIGKILL to the leader, its descendants and its process group at once."""
        self._end({})

    def _end(self, known: dict[int, int]) -> None:
        popen = self._popen
        if popen is None:
            return
        leader = popen.pid
        victims = dict(known)
        if self.running:  # stopped, it forks no more while the others are found and stopped
            _signal({leader: family(leader).get(leader, -1)}, signal.SIGSTOP)
        for _ in range(5):  # the others, stopped too, until no new one appears
            found = {pid: start for pid, start in family(leader).items() if pid not in victims}
            victims.update(found)
            _signal(found, signal.SIGSTOP)
            if not found:
                break
        _signal(victims, signal.SIGKILL)
        # The leader is reaped only after its group is signalled: until then its pid, the
        # group's id, cannot be given to a new process (whose group we would kill).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(leader, signal.SIGKILL)
        popen.wait()
        left = eventually(
            lambda: sorted(_alive(victims).keys() | set(processes_in_group(leader))),
            lambda pids: not pids,
            timeout=KILL_TIMEOUT,
            interval=POLL,
        )
        self._popen = None
        self._frozen = False
        _LIVE.discard(self)
        if left:
            raise ProcessError(f"{self.name}: still running {KILL_TIMEOUT:.0f}s after SIGKILL: {left}")

    # ----------------------------------------------------------------- freeze

    def freeze(self) -> None:
        """Hang it (SIGSTOP to it and its family): the kernel still accepts connections and
        takes requests, but nothing answers, as with a server stuck on its disk or a lock.
        Returns once every thread is stopped, so no request sent afterwards can be answered."""
        if not self.running:
            raise ProcessError(f"{self.name} is not running: nothing to freeze")
        self._frozen_members = family(self.popen.pid)
        _signal(self._frozen_members, signal.SIGSTOP)
        self._frozen = True
        pids = list(self._frozen_members)
        if not eventually(lambda: _all_threads_stopped(pids), bool, timeout=5.0, interval=0.001):
            raise ProcessError(f"{self.name} (pid {self.popen.pid}) did not stop within 5s of SIGSTOP")

    def thaw(self) -> None:
        """Resume a frozen process (SIGCONT); it answers what was sent meanwhile."""
        if self.running:
            _signal(self._frozen_members, signal.SIGCONT)
        self._frozen = False

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.running else "stopped"
        return f"<ChildProcess {self.name} {state}>"


def on_free_ports(start: Callable[[], None], pick_new_ports: Callable[[], None] | None, attempts: int = 3) -> None:
    """`start()`; when a port turns out to be taken (`PortInUse`), `pick_new_ports()` and try
    again. Without `pick_new_ports` (ports fixed by the caller) the first `PortInUse` is raised."""
    for attempt in range(1, attempts + 1):
        try:
            start()
            return
        except PortInUse:
            if pick_new_ports is None or attempt == attempts:
                raise
            pick_new_ports()
