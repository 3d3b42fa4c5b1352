"""The real `authsvc serve` (granian over TLS) as the serve tests start and stop it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.components.support import free_port, log_tail, wait_for_port


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
    once every listener accepts connections. It runs in a session of its own, so that teardown
    ends every process it started (the session id is its pid) even after the parent was killed."""
    args = [sys.executable, "-m", "authsvc.cli", f"--home={home}", "serve", f"--bind=127.0.0.1:{webhook}"]
    args += [f"--workers={workers}", f"--public-bind=127.0.0.1:{public}" if public else "--public-bind="]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, env=dict(env or os.environ), start_new_session=True
        )
        try:
            try:
                for port in (webhook, public):
                    if port:
                        wait_for_port("127.0.0.1", port, 30)
            except TimeoutError:
                pytest.fail(f"authsvc serve did not start:\n{log_tail(log_path)}")
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=20)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # what is left of this server's session
            process.wait()


def serve_refusal(home: Path, *, public: bool, timeout: float = 40) -> subprocess.CompletedProcess[str]:
    """`authsvc serve` on loopback, expected to refuse to start: its exit status and output, or a
    test failure when it is still running after `timeout` (then everything it started is killed)."""
    args = [sys.executable, "-m", "authsvc.cli", f"--home={home}", "serve", f"--bind=127.0.0.1:{free_port()}"]
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
