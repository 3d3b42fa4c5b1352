"""Processes the end-to-end suite drives: the `authsvc` console script, `authsvc serve`, kubectl.

Everything runs as a real child process, the way an operator runs it: the installed `authsvc`
entry point (the same one kubectl starts as an exec credential plugin), granian serving the
webhook over TLS with mTLS, and /usr/bin/kubectl talking to the real kube-apiserver.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import yaml

from tests.components.process import ChildProcess
from tests.components.support import eventually as wait_until
from tests.serve.support import AuthsvcServe

# The venv's bin folder: `authsvc` lives there, and kubectl must find it on PATH for exec plugins.
VENV_BIN = Path(sys.executable).parent
AUTHSVC = VENV_BIN / "authsvc"
# Propagation (an RBAC binding reaching the authorizer's cache, a revocation reaching the
# webhook's key cache) is polled for, never slept through; this bounds the wait.
PROPAGATION_TIMEOUT = 15.0

T = TypeVar("T")


def child_env(extra: Mapping[str, str] | None = None, *, home_dir: Path | None = None) -> dict[str, str]:
    """The environment of a child: no proxies for loopback, `authsvc` on PATH, no stray KUBECONFIG."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "kubeconfig") and not k.startswith("AUTHSVC_")
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    if home_dir is not None:
        # kubectl keeps its discovery cache and exec-plugin state under $HOME/.kube.
        env["HOME"] = str(home_dir)
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class Result:
    """What a finished command did."""

    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.code == 0

    def describe(self) -> str:
        return (
            f"$ {' '.join(self.args)}\nexit {self.code}\nstdout: {self.stdout.strip()}\nstderr: {self.stderr.strip()}"
        )


def run(args: Sequence[str], *, env: Mapping[str, str], timeout: float = 60.0, input: str | None = None) -> Result:
    proc = subprocess.run(
        list(args), capture_output=True, text=True, env=dict(env), timeout=timeout, input=input, check=False
    )
    return Result(tuple(args), proc.returncode, proc.stdout, proc.stderr)


def eventually(attempt: Callable[[], T], done: Callable[[T], bool], timeout: float = PROPAGATION_TIMEOUT) -> T:
    """tests.components.support.eventually with the control plane's propagation deadline."""
    return wait_until(attempt, done, timeout=timeout)


@dataclass(frozen=True)
class AuthsvcCli:
    """`authsvc --home HOME ...`: the real entry point (`authsvc.cli.main`), run in-process.

    In-process, as tests/conftest.py's run_cli: each command still parses its arguments, opens
    the home from disk and maps errors to exit codes exactly as the console script does, but
    the imports are paid once (a cold `authsvc` process takes 0.5-4 s, mostly imports, on a
    busy 2-core machine; the suite runs ~40 commands). `subprocess=True` runs the installed
    console script instead. Processes that must be real are: `authsvc serve` (AuthsvcServer)
    and `authsvc login`, which kubectl starts itself.
    """

    home: Path
    env: Mapping[str, str]
    subprocess: bool = False

    def __call__(self, *args: str, input: str | None = None, now: str | None = None) -> Result:
        clock = [f"--now={now}"] if now is not None else []
        argv = [f"--home={self.home}", *clock, *args]
        if self.subprocess:
            return run([str(AUTHSVC), *argv], env=self.env, input=input)
        from tests.conftest import run_cli

        result = run_cli(argv, input=input)
        return Result(("authsvc", *argv), result.exit_code, result.stdout, result.stderr)

    def ok(self, *args: str, input: str | None = None, now: str | None = None) -> str:
        """Run it, fail the test with its output unless it exits 0; return stdout."""
        result = self(*args, input=input, now=now)
        assert result.ok, result.describe()
        return result.stdout


@dataclass(frozen=True)
class Kubectl:
    """The real kubectl, one kubeconfig per call, with its cache in a private HOME."""

    binary: Path
    env: Mapping[str, str]

    def __call__(self, kubeconfig: Path, *args: str, env: Mapping[str, str] | None = None) -> Result:
        """kubectl ARGS; `env` adds to its environment (exec plugins such as `authsvc login` inherit it)."""
        command = [str(self.binary), f"--kubeconfig={kubeconfig}", "--request-timeout=30s", *args]
        return run(command, env={**self.env, **(env or {})})


class AuthsvcServer:
    """`authsvc serve` (granian, TLS + mTLS) as a child process: the installed console script, with
    the CLI's home and environment, ready once its own processes listen on `bind` (and `public`)
    and GET /healthz answers 200 over mTLS (tests/serve/support.py's AuthsvcServe)."""

    def __init__(
        self, cli: AuthsvcCli, bind: str, log_path: Path, extra_args: Sequence[str] = (), *, public: int | None = None
    ) -> None:
        self.cli = cli
        self.bind = bind
        self.log_path = log_path
        self.extra_args = tuple(extra_args)
        self.public = public
        self._serve: AuthsvcServe | None = None

    @property
    def url(self) -> str:
        return f"https://{self.bind}"

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self._serve.process if self._serve is not None and self._serve.child.running else None

    def start(self, context: ssl.SSLContext) -> None:
        """Start it and wait until GET /healthz answers 200 over mTLS with `context`."""
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
        )
        urls = self._listener_urls()

        def healthy() -> str | None:
            for url in urls:  # the public listener is a granian of its own: it may answer a moment later
                try:
                    with opener.open(f"{url}/healthz", timeout=2) as response:
                        if response.status != 200:
                            return f"{url}: HTTP {response.status}"
                except (OSError, urllib.error.URLError) as exc:
                    return f"{url}: {exc}"
            return None

        self._serve = AuthsvcServe(
            self.cli.home,
            self.log_path,
            webhook=int(self.bind.rpartition(":")[2]),
            public=self.public,
            configured_ports=[int(url.rpartition(":")[2]) for url in urls[1:]],
            args=self.extra_args,
            env=self.cli.env,
            ready=healthy,
            command=(str(AUTHSVC),),
            kill_on_parent_exit=True,
        )
        self._serve.start()

    def _listener_urls(self) -> list[str]:
        """This listener's URL, and the public listener's when there is one (`public`, a
        --public-bind flag, or authsvc.yaml's server.public_bind)."""
        urls = [self.url]
        if "--insecure-no-client-cert" in self.extra_args:
            return urls  # one listener with everything
        given = [arg.partition("=")[2] for arg in self.extra_args if arg.startswith("--public-bind=")]
        config = self.cli.home / "authsvc.yaml"
        public_bind = f"127.0.0.1:{self.public}" if self.public else given[-1] if given else None
        if public_bind is None and config.exists():
            public_bind = (yaml.safe_load(config.read_text()).get("server") or {}).get("public_bind")
        if public_bind:
            urls.append(f"https://{public_bind}")
        return urls

    def stop(self) -> None:
        """SIGTERM by PID, then SIGKILL to whatever is left of it."""
        serve, self._serve = self._serve, None
        if serve is not None:
            serve.stop()


class AuthsvcProxy:
    """`authsvc proxy` as a child process (its own event loop and TLS), on the components' one
    lifecycle: ready once it listens on both ports and its metrics listener answers /healthz
    (the TLS listener forwards every path to the API server, /healthz included)."""

    def __init__(self, cli: AuthsvcCli, port: int, metrics_port: int, log_path: Path, extra_args: Sequence[str] = ()):
        self.cli = cli
        self.port = port
        self.metrics_port = metrics_port
        self.extra_args = tuple(extra_args)
        self.child = ChildProcess("authsvc proxy", log_path, kill_on_parent_exit=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}"

    def start(self) -> None:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

        def healthy() -> str | None:
            try:
                with opener.open(f"{self.metrics_url}/healthz", timeout=2) as response:
                    return None if response.status == 200 else f"/healthz: HTTP {response.status}"
            except (OSError, urllib.error.URLError) as exc:
                return f"/healthz: {exc}"

        argv = [
            str(AUTHSVC),
            f"--home={self.cli.home}",
            "proxy",
            f"--bind=127.0.0.1:{self.port}",
            f"--metrics-bind=127.0.0.1:{self.metrics_port}",
            *self.extra_args,
        ]
        self.child.start(argv, ready=healthy, ports=[self.port, self.metrics_port], env=self.cli.env)

    def stop(self) -> None:
        self.child.stop()
