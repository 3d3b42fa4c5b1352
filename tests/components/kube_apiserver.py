"""A real etcd + kube-apiserver v1.20.2 on free loopback ports, for end-to-end tests.

Plain helpers, no pytest fixtures and no imports from the authsvc package:

    files = ControlPlaneFiles(
        client_ca_file=ca, tls_cert_file=serving_crt, tls_private_key_file=serving_key,
        service_account_key_file=sa_pub, service_account_signing_key_file=sa_key,
        service_account_issuer="https://authsvc.test",
        webhook_config_file=webhook_kubeconfig,          # optional
        probe_client_cert_file=admin_crt, probe_client_key_file=admin_key,  # optional
    )
    cp = ControlPlane()
    cp.start(files, workdir)
    try:
        write_kubeconfig(path, cp.url, ca, admin_crt, admin_key)
        ...
    finally:
        cp.stop()

The kube-apiserver binary comes from ``scripts/kube-apiserver.sh`` (built once per
machine and cached, see shared/testing/kube-apiserver.md), or from the environment
variable ``AUTHSVC_KUBE_APISERVER`` (or ``KUBE_APISERVER``) when that names a binary. etcd is Debian's
``etcd-server`` (``/usr/bin/etcd``, or ``AUTHSVC_ETCD``).

Readiness: ``start()`` returns once ``GET /readyz`` answers HTTP 200. The probe verifies
the serving certificate against ``client_ca_file`` (the serving certificate must be
issued by that CA, or give ``probe_ca_file``) and:

- with ``probe_client_cert_file``/``probe_client_key_file`` (e.g. a system:masters
  client certificate) it authenticates, and additionally waits until the ``default``
  namespace exists, so tests can create objects right away;
- without them it asks anonymously. kube-apiserver allows anonymous ``/readyz`` through
  the ``system:public-info-viewer`` role, so 200 means ready; 403 means the RBAC bootstrap
  policy is not in place yet (keep waiting). Only when anonymous auth is disabled
  (``--anonymous-auth=false`` in extra_args) is 401 taken as "up", since readiness
  cannot be seen then.

Logs are written under ``workdir`` (``etcd.log``, ``kube-apiserver.log``, then
``kube-apiserver.2.log``... after each restart) and are left there. Both processes run through
``tests.components.process.ChildProcess`` (stopped by PID, group and all; a port taken by
someone else before they bind it is chosen again).
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .process import ChildProcess, PortInUse, ProcessError, die_with_parent, on_free_ports
from .support import free_port, free_ports, log_tail

__all__ = [
    "ControlPlane",
    "ControlPlaneError",
    "ControlPlaneFiles",
    "die_with_parent",
    "etcd_binary",
    "free_port",
    "free_ports",
    "kube_apiserver_binary",
    "kubeadm_binary",
    "log_tail",
    "write_kubeconfig",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "scripts" / "kube-apiserver.sh"
KUBEADM_SCRIPT = REPO_ROOT / "scripts" / "kubeadm.sh"

START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


class ControlPlaneError(RuntimeError):
    """etcd or kube-apiserver could not be started (message includes the log tail)."""


# --------------------------------------------------------------------------- binaries


def kube_apiserver_binary() -> Path:
    """Path of a kube-apiserver v1.20.2 binary.

    ``$AUTHSVC_KUBE_APISERVER`` or ``$KUBE_APISERVER`` (exported by scripts/test.sh) if
    set, else the output of scripts/kube-apiserver.sh (instant when cached; builds it,
    ~5 minutes, otherwise).
    """
    return _built_binary(("AUTHSVC_KUBE_APISERVER", "KUBE_APISERVER"), BUILD_SCRIPT)


def kubeadm_binary() -> Path:
    """Path of the kubeadm v1.20.2 built from the same source package.

    ``$AUTHSVC_KUBEADM`` or ``$KUBEADM`` (exported by scripts/test.sh) if set, else the output
    of scripts/kubeadm.sh (instant when cached; one more `go build`, ~1 minute, otherwise).
    """
    return _built_binary(("AUTHSVC_KUBEADM", "KUBEADM"), KUBEADM_SCRIPT)


def _built_binary(variables: tuple[str, ...], script: Path) -> Path:
    for var in variables:
        override = os.environ.get(var)
        if override:
            path = Path(override)
            if not (path.is_file() and os.access(path, os.X_OK)):
                raise ControlPlaneError(f"{var}={override} is not an executable file")
            return path
    proc = subprocess.run(
        ["bash", str(script)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise ControlPlaneError(f"{script} failed (exit {proc.returncode}):\n{proc.stderr.strip()}")
    path = Path(proc.stdout.strip())
    if not path.is_file():
        raise ControlPlaneError(f"{script} printed {proc.stdout!r}, not a file")
    return path


def etcd_binary() -> Path:
    """Path of the etcd binary: ``$AUTHSVC_ETCD``, else etcd on PATH, else /usr/bin/etcd."""
    candidate = os.environ.get("AUTHSVC_ETCD") or shutil.which("etcd") or "/usr/bin/etcd"
    path = Path(candidate)
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ControlPlaneError(f"etcd not found at {path}: apt-get install -y etcd-server")
    return path


# --------------------------------------------------------------------------- helpers


def write_kubeconfig(
    path: Path,
    server_url: str,
    ca_file: Path,
    client_cert_file: Path | None = None,
    client_key_file: Path | None = None,
    token: str | None = None,
) -> Path:
    """Write a kubeconfig for ``server_url`` with a client certificate and/or a token."""
    user_lines = []
    if client_cert_file is not None:
        user_lines.append(f"    client-certificate: {Path(client_cert_file).resolve()}")
    if client_key_file is not None:
        user_lines.append(f"    client-key: {Path(client_key_file).resolve()}")
    if token is not None:
        user_lines.append(f'    token: "{token}"')
    user = "\n".join(user_lines) if user_lines else "    {}"
    path.write_text(
        f"""apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: {server_url}
    certificate-authority: {Path(ca_file).resolve()}
users:
- name: test
  user:
{user}
contexts:
- name: test
  context:
    cluster: test
    user: test
current-context: test
"""
    )
    path.chmod(0o600)
    return path


def _child_env() -> dict[str, str]:
    # etcd reads ETCD_* variables as flags; proxies must not catch loopback traffic.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ETCD_") and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


def _http_get(url: str, context: ssl.SSLContext | None, timeout: float = 3.0) -> tuple[int, str]:
    """(status, body) of a GET; raises OSError when there's no HTTP answer."""
    handlers: list[Any] = [urllib.request.ProxyHandler({})]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except urllib.error.URLError as exc:
        reason = exc.reason
        raise reason if isinstance(reason, OSError) else OSError(str(reason)) from exc


# --------------------------------------------------------------------------- control plane


@dataclass
class ControlPlaneFiles:
    """What kube-apiserver is started with. Paths are files the test created."""

    client_ca_file: Path
    tls_cert_file: Path
    tls_private_key_file: Path
    service_account_key_file: Path
    service_account_signing_key_file: Path
    service_account_issuer: str
    webhook_config_file: Path | None = None
    webhook_cache_ttl: str = "0s"
    extra_args: list[str] = field(default_factory=list)
    # --api-audiences; defaults to [service_account_issuer].
    api_audiences: list[str] | None = None
    # Client certificate used by the readiness probe (e.g. an O=system:masters cert).
    probe_client_cert_file: Path | None = None
    probe_client_key_file: Path | None = None
    # CA that issued tls_cert_file, if it isn't client_ca_file.
    probe_ca_file: Path | None = None


class ControlPlane:
    """One etcd member and one kube-apiserver on 127.0.0.1, started as child processes."""

    def __init__(
        self,
        apiserver_binary: Path | None = None,
        etcd: Path | None = None,
        start_timeout: float = START_TIMEOUT,
        kill_on_parent_exit: bool = True,
        secure_port: int | None = None,
    ) -> None:
        # secure_port: listen there instead of a free port picked at start (e.g. the port
        # already written into kubeconfigs such as kubeadm's admin.conf).
        self._fixed_port = secure_port
        self._apiserver_binary = apiserver_binary
        self._etcd_binary = etcd
        self.start_timeout = start_timeout
        self._kill_on_parent_exit = kill_on_parent_exit
        self.files: ControlPlaneFiles | None = None
        self.workdir: Path | None = None
        self.etcd_client_port: int | None = None
        self.etcd_peer_port: int | None = None
        self.secure_port: int | None = None
        self.etcd_process: ChildProcess | None = None
        self.apiserver_process: ChildProcess | None = None
        self._apiserver_starts = 0

    # ----------------------------------------------------------------- properties

    @property
    def url(self) -> str:
        if self.secure_port is None:
            raise ControlPlaneError("control plane not started")
        return f"https://127.0.0.1:{self.secure_port}"

    @property
    def etcd_url(self) -> str:
        if self.etcd_client_port is None:
            raise ControlPlaneError("etcd not started")
        return f"http://127.0.0.1:{self.etcd_client_port}"

    @property
    def etcd_log(self) -> Path | None:
        return self.etcd_process.log_path if self.etcd_process is not None else None

    @property
    def apiserver_log(self) -> Path | None:
        return self.apiserver_process.log_path if self.apiserver_process is not None else None

    @property
    def running(self) -> bool:
        return all(p is not None and p.running for p in (self.etcd_process, self.apiserver_process))

    # ----------------------------------------------------------------- lifecycle

    def start(self, files: ControlPlaneFiles, workdir: Path) -> None:
        """Start etcd (fresh data dir) then kube-apiserver; return once /readyz is 200."""
        if self.running:
            raise ControlPlaneError("control plane already started; stop() it first")
        if self._apiserver_binary is None:
            self._apiserver_binary = kube_apiserver_binary()
        if self._etcd_binary is None:
            self._etcd_binary = etcd_binary()
        self.files = files
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.etcd_process = self._child("etcd", self.workdir / "etcd.log")
        self.apiserver_process = self._child("kube-apiserver", self.workdir / "kube-apiserver.log")
        try:
            self._start_etcd()
            self._start_apiserver(new_port=True)
        except BaseException:
            self.stop()
            raise

    def _child(self, name: str, log: Path) -> ChildProcess:
        # A probe each quarter second, as before: each is an HTTP(S) request to a server that is starting.
        return ChildProcess(
            name,
            log,
            start_timeout=self.start_timeout,
            kill_on_parent_exit=self._kill_on_parent_exit,
            poll_interval=0.25,
        )

    def stop(self) -> None:
        """Stop kube-apiserver then etcd (SIGTERM, wait, SIGKILL). Idempotent."""
        try:
            if self.apiserver_process is not None:
                self.apiserver_process.stop(STOP_TIMEOUT)
        finally:
            if self.etcd_process is not None:
                self.etcd_process.stop(STOP_TIMEOUT)

    def restart_apiserver(self, files: ControlPlaneFiles | None = None) -> None:
        """Restart only kube-apiserver, on the same port with the same flags.

        Files are re-read, so e.g. a changed service-account public key bundle takes
        effect. Pass ``files`` to change flags too. etcd and its data are kept.
        """
        if self.etcd_process is None or self.apiserver_process is None or self.workdir is None:
            raise ControlPlaneError("control plane not started")
        if files is not None:
            self.files = files
        self.apiserver_process.stop(STOP_TIMEOUT)
        self._start_apiserver(new_port=False)

    def __enter__(self) -> ControlPlane:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- etcd

    def _start_etcd(self) -> None:
        assert self.workdir is not None and self._etcd_binary is not None and self.etcd_process is not None
        workdir, binary, process = self.workdir, self._etcd_binary, self.etcd_process

        def pick_ports() -> None:
            self.etcd_client_port, self.etcd_peer_port = free_ports(2)

        def start_once() -> None:
            data_dir = workdir / "etcd-data"
            shutil.rmtree(data_dir, ignore_errors=True)
            client = f"http://127.0.0.1:{self.etcd_client_port}"
            peer = f"http://127.0.0.1:{self.etcd_peer_port}"
            args = [
                str(binary),
                "--name=authsvc-test",
                f"--data-dir={data_dir}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=authsvc-test={peer}",
                "--initial-cluster-state=new",
                "--initial-cluster-token=authsvc-test",
            ]
            ports = [p for p in (self.etcd_client_port, self.etcd_peer_port) if p is not None]
            process.start(args, ready=self._etcd_healthy, ports=ports, env=_child_env(), cwd=workdir)

        pick_ports()
        _as_control_plane_error(lambda: on_free_ports(start_once, pick_ports))

    def _etcd_healthy(self) -> str | None:
        """None once etcd's /health says so, else what it says."""
        try:
            status, body = _http_get(f"{self.etcd_url}/health", None)
        except OSError as exc:
            return str(exc)
        if status == 200 and '"health":"true"' in body.replace(" ", ""):
            return None
        return f"HTTP {status}: {body.strip()}"

    # ----------------------------------------------------------------- kube-apiserver

    def apiserver_args(self) -> list[str]:
        """The kube-apiserver command line for the current files and ports."""
        f = self.files
        assert f is not None and self.workdir is not None and self._apiserver_binary is not None
        audiences = f.api_audiences if f.api_audiences else [f.service_account_issuer]
        args = [
            str(self._apiserver_binary),
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.secure_port}",
            "--insecure-port=0",
            f"--cert-dir={self.workdir / 'apiserver-certs'}",
            "--endpoint-reconciler-type=none",
            "--service-cluster-ip-range=10.0.0.0/24",
            f"--etcd-servers={self.etcd_url}",
            f"--client-ca-file={f.client_ca_file}",
            f"--tls-cert-file={f.tls_cert_file}",
            f"--tls-private-key-file={f.tls_private_key_file}",
            f"--service-account-key-file={f.service_account_key_file}",
            f"--service-account-signing-key-file={f.service_account_signing_key_file}",
            f"--service-account-issuer={f.service_account_issuer}",
            f"--api-audiences={','.join(audiences)}",
            "--authorization-mode=RBAC",
        ]
        if f.webhook_config_file is not None:
            args += [
                f"--authentication-token-webhook-config-file={f.webhook_config_file}",
                "--authentication-token-webhook-version=v1",
                f"--authentication-token-webhook-cache-ttl={f.webhook_cache_ttl}",
            ]
        args += list(f.extra_args)
        return args

    def _start_apiserver(self, new_port: bool) -> None:
        assert self.workdir is not None and self.apiserver_process is not None
        workdir, process = self.workdir, self.apiserver_process

        def pick_port() -> None:
            self.secure_port = free_port()

        def start_once() -> None:
            self._apiserver_starts += 1
            n = self._apiserver_starts
            process.log_path = workdir / ("kube-apiserver.log" if n == 1 else f"kube-apiserver.{n}.log")
            assert self.secure_port is not None
            ports = [self.secure_port]
            process.start(
                self.apiserver_args(), ready=self._apiserver_ready(), ports=ports, env=_child_env(), cwd=workdir
            )

        if self._fixed_port is not None:
            self.secure_port = self._fixed_port
        elif new_port or self.secure_port is None:
            pick_port()
        chosen_here = new_port and self._fixed_port is None
        _as_control_plane_error(lambda: on_free_ports(start_once, pick_port if chosen_here else None))

    def _probe_context(self) -> ssl.SSLContext:
        f = self.files
        assert f is not None
        ctx = ssl.create_default_context(cafile=str(f.probe_ca_file or f.client_ca_file))
        if f.probe_client_cert_file is not None:
            ctx.load_cert_chain(
                str(f.probe_client_cert_file),
                str(f.probe_client_key_file) if f.probe_client_key_file else None,
            )
        return ctx

    def _apiserver_ready(self) -> Callable[[], str | None]:
        """The readiness probe of one start: /readyz, then (authenticated) the default namespace."""
        f = self.files
        assert f is not None
        authenticated = f.probe_client_cert_file is not None
        ctx = self._probe_context()
        readyz_passed = False

        def probe() -> str | None:
            nonlocal readyz_passed
            try:
                if not readyz_passed:
                    status, body = _http_get(f"{self.url}/readyz?verbose", ctx)
                    if not (status == 200 or (status == 401 and not authenticated)):
                        return f"/readyz: HTTP {status}: {body.strip()[-2000:]}"
                    readyz_passed = True
                    if not authenticated:
                        return None
                status, body = _http_get(f"{self.url}/api/v1/namespaces/default", ctx)
                return None if status == 200 else f"/api/v1/namespaces/default: HTTP {status}: {body.strip()[-500:]}"
            except ssl.SSLError as exc:
                if "CERTIFICATE_VERIFY_FAILED" in str(exc):
                    raise ControlPlaneError(
                        f"cannot verify kube-apiserver's serving certificate with "
                        f"{f.probe_ca_file or f.client_ca_file} ({exc}); set probe_ca_file"
                    ) from exc
                return f"TLS error: {exc}"
            except OSError as exc:
                return str(exc)

        return probe


def _as_control_plane_error(start: Callable[[], None]) -> None:
    """What ChildProcess raises, as this module's error (callers catch ControlPlaneError)."""
    try:
        start()
    except (PortInUse, ProcessError) as exc:
        raise ControlPlaneError(str(exc)) from exc
