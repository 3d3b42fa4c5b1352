"""The real `authsvc serve` (granian over TLS) as the tests start and stop it: one way, here.

`AuthsvcServe` runs it through tests.components.process.ChildProcess: in a session of its own
(a stop ends every worker it started, even after the parent was killed), ready once its own
processes listen on every port it was given (a port someone else took since it was chosen is
an error naming the holder, never a server that is not ours answering the test), and once the
optional `ready` probe (e.g. GET /healthz over mTLS) passes. `authsvc_serve` is the context
manager most tests want; `serve_refusal` runs it when it must refuse to start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Literal

import pytest

from tests.components.process import ChildProcess, ProcessError
from tests.components.support import free_port

# `python -m authsvc.cli` is the console script `authsvc` without its wrapper; either may be given.
AUTHSVC_MODULE = (sys.executable, "-m", "authsvc.cli")
START_TIMEOUT = 60.0  # a deadline on a busy machine, not a wait
STOP_TIMEOUT = 20.0  # a stop writes the last audit batch and metrics snapshot


class AuthsvcServe:
    """`authsvc --home HOME serve` as a child process.

    `webhook`/`public`: the ports of --bind/--public-bind (None: no flag, the home's settings
    decide; public "off": no public listener, whatever the settings say). `configured_ports`:
    ports the settings name, to be listened on all the same. `workers`: --workers (None: the
    settings' value). `args`: more serve flags.
    """

    def __init__(
        self,
        home: Path,
        log_path: Path,
        *,
        webhook: int | None,
        public: int | Literal["off"] | None = None,
        configured_ports: Sequence[int] = (),
        workers: int | None = 1,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        ready: Callable[[], str | None] | None = None,
        command: Sequence[str] = AUTHSVC_MODULE,
        kill_on_parent_exit: bool = False,
    ) -> None:
        self.home = home
        self.webhook = webhook
        self.public = public
        self.argv = [*command, f"--home={home}", "serve"]
        self.argv += [f"--bind=127.0.0.1:{webhook}"] if webhook else []
        if public is not None:
            self.argv.append("--public-bind=" if public == "off" else f"--public-bind=127.0.0.1:{public}")
        self.argv += [f"--workers={workers}"] if workers else []
        self.argv += list(args)
        self.ports = [p for p in (webhook, public, *configured_ports) if isinstance(p, int)]
        self.env = env
        self.ready = ready
        self.child = ChildProcess(
            "authsvc serve",
            log_path,
            start_timeout=START_TIMEOUT,
            stop_timeout=STOP_TIMEOUT,
            kill_on_parent_exit=kill_on_parent_exit,
        )

    @property
    def log_path(self) -> Path:
        return self.child.log_path

    @property
    def process(self) -> subprocess.Popen[bytes]:
        """The leader: `granian`'s main process, as PID 1 of a container would be."""
        return self.child.popen

    def start(self) -> subprocess.Popen[bytes]:
        self.child.start(self.argv, ready=self.ready, ports=self.ports, env=self.env)
        return self.process

    def stop(self) -> None:
        """SIGTERM to the leader (as kubelet sends it), then SIGKILL to whatever is left."""
        self.child.stop()

    @contextlib.contextmanager
    def running(self) -> Iterator[subprocess.Popen[bytes]]:
        """Started (a test failure, with the log, when it does not start); stopped at the end."""
        try:
            process = self.start()
        except ProcessError as exc:
            pytest.fail(f"authsvc serve did not start: {exc}", pytrace=False)
        try:
            yield process
        finally:
            self.stop()


@contextlib.contextmanager
def authsvc_serve(
    home: Path,
    log_path: Path,
    *,
    webhook: int,
    public: int | None,
    workers: int = 1,
    env: Mapping[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """`authsvc serve` on loopback (`public`: the public listener's port, None for none), yielded
    once its own processes listen on every port; stopped, every process it started, at the end."""
    public_listener = public or "off"  # none: even if the settings have one
    with AuthsvcServe(
        home, log_path, webhook=webhook, public=public_listener, workers=workers, env=env
    ).running() as process:
        yield process


def serve_refusal(home: Path, *, public: bool, timeout: float = 40) -> subprocess.CompletedProcess[str]:
    """`authsvc serve` on loopback, expected to refuse to start: its exit status and output, or a
    test failure when it is still running after `timeout` (then everything it started is killed)."""
    args = [*AUTHSVC_MODULE, f"--home={home}", "serve", f"--bind=127.0.0.1:{free_port()}"]
    args += [f"--public-bind=127.0.0.1:{free_port()}" if public else "--public-bind="]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"authsvc serve was expected to refuse to start, but it is serving: {' '.join(args)}")
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)
