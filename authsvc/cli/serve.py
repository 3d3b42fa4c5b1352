"""`authsvc serve`: the TokenReview webhook (and /healthz, /readyz, /metrics) on granian.

granian's WSGI interface terminates TLS in Rust and verifies client certificates itself
(`ssl_ca` + `ssl_client_verify`): a caller without a certificate from `server.client_ca` never
reaches Python. Never the Flask development server.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from authsvc.home.opened import Home

import click

from authsvc.cli import CliState, long_lived_process

WSGI_FACTORY = "authsvc.wsgi:create_wsgi_app"


@dataclass(frozen=True, slots=True)
class ServePlan:
    host: str
    port: int
    workers: int
    threads: int
    cert: Path
    key: Path
    client_ca: Path | None  # None: client certificates are not required (development only)
    client_crl: Path | None
    tls_min_version: str

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"


def parse_bind(value: str, what: str = "--bind") -> tuple[str, int]:
    """`HOST:PORT` or `[IPv6]:PORT` -> (host, port); UsageError naming the value (and `what` it is) otherwise."""
    from authsvc.errors import UsageError

    host, sep, port = value.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"{what} {value!r} is not HOST:PORT (e.g. 127.0.0.1:8443 or [::1]:8443)")
    return host, int(port)


def serve_plan(home: Home, *, bind: str | None, workers: int | None, threads: int | None, insecure: bool) -> ServePlan:
    """What to run, from the settings and the flags; every file must exist (else: run init)."""
    from authsvc.errors import HomeError
    from pki.store import read_private_key_file

    server = home.settings.server
    host, port = parse_bind(bind or server.bind)
    cert, key = home.layout.path(server.tls_cert), home.layout.path(server.tls_key)
    require_client = server.require_client_cert and not insecure
    client_ca = home.layout.path(server.client_ca) if require_client else None
    client_crl = home.layout.path(server.client_crl) if require_client and server.client_crl else None
    for path in (cert, key, client_ca, client_crl):
        if path is not None and not path.is_file():
            raise HomeError(f"{path} does not exist: run `authsvc init --home {home.root}` (or fix server.* paths)")
    # granian signs every handshake with it: a key others can read is refused like the CA keys.
    if b"ENCRYPTED" in read_private_key_file(key, what="serving key")[:64]:
        raise HomeError(f"{key} is encrypted: granian needs the serving key in clear PKCS#8 (mode 0600)")
    return ServePlan(
        host,
        port,
        workers or server.workers,
        threads or server.threads,
        cert,
        key,
        client_ca,
        client_crl,
        server.tls_min_version,
    )


def check_backends(home: Home) -> None:
    """Build the chain once here, so a bad token file or JWKS file is one line, not a worker crash.
    Only the chain: the rest of the runtime (audit log, login) starts threads and connections
    that must not cross granian's fork."""
    from authsvc.authn.base import ChainContext
    from authsvc.authn.chain import build_chain

    build_chain(ChainContext.of(home))
    home.stores.close()  # a backend may have opened the database: not across granian's fork


def warn_drift(home: Home) -> None:
    """A warning per certificate that differs from the settings that shape it (`server.serving_sans`
    changed after init, ...): serving goes on with what the files hold, and the line says how to fix it."""
    from authsvc.drift.detect import detect_drift
    from authsvc.errors import AuthsvcError
    from pki.errors import PKIError

    try:
        drifts = detect_drift(home)
    except (AuthsvcError, PKIError, ValueError) as e:
        click.echo(f"warning: cannot compare the certificates with the configuration: {e}", err=True)
        return
    for drift in drifts:
        where = (
            drift.expected.path.relative_to(home.root)
            if drift.expected.path.is_relative_to(home.root)
            else drift.expected.path
        )
        click.echo(f"warning: {where}: {drift.describe()}: {drift.fix}", err=True)


def check_public_listener(home: Any) -> None:
    """What the public listener publishes and signs with, checked before anything listens: discovery's
    URLs come from the settings only (ConfigError when unset), and /login signs with pki/sa.key
    (StoreError when it is too open)."""
    from pki.store import read_private_key_file

    home.settings.published_jwks_uri()
    signing_key = home.layout.key_path("sa")
    if home.settings.login.backends and signing_key.exists():
        read_private_key_file(signing_key, what="signing key")


def run_granian(plan: ServePlan) -> None:
    """Serve `plan` until stopped. granian reports a listener it cannot open (a port in use, a
    privileged port) as a RuntimeError from its Rust side: that becomes the one-line error a
    user can act on, not an internal error."""
    from authsvc.errors import AuthsvcError

    try:
        granian_server(plan).serve()
    except RuntimeError as e:
        found = re.search(r"^(.*?)\s*\(os error (\d+)\)", str(e))
        if found is None:
            raise
        hint = " (another authsvc serve? choose another with --bind)" if int(found[2]) == errno.EADDRINUSE else ""
        raise AuthsvcError(f"cannot listen on {plan.host}:{plan.port}: {found[1]}{hint}") from None


def granian_server(plan: ServePlan) -> Any:
    from granian import Granian
    from granian.constants import Interfaces, SSLProtocols

    return Granian(
        WSGI_FACTORY,
        factory=True,
        address=plan.host,
        port=plan.port,
        interface=Interfaces.WSGI,
        workers=plan.workers,
        blocking_threads=plan.threads,
        websockets=False,
        ssl_cert=plan.cert,
        ssl_key=plan.key,
        ssl_protocol_min=SSLProtocols(plan.tls_min_version),
        ssl_ca=plan.client_ca,
        ssl_crl=[plan.client_crl] if plan.client_crl else None,
        ssl_client_verify=plan.client_ca is not None,
    )


@click.command()
@click.option("--bind", metavar="HOST:PORT", help="Webhook listener (mTLS). [default: server.bind, 127.0.0.1:8443]")
@click.option(
    "--public-bind",
    metavar="HOST:PORT",
    help="Public listener (TLS, no client certificate): /login, OIDC discovery, JWKS, health, metrics. "
    "An empty value (--public-bind '') serves none. [default: server.public_bind, which `authsvc init` "
    "sets to 127.0.0.1:8444]",
)
@click.option("--workers", type=click.IntRange(1, 64), help="Worker processes. [default: server.workers]")
@click.option("--threads", type=click.IntRange(1, 64), help="Threads per worker. [default: server.threads]")
@click.option(
    "--insecure-no-client-cert",
    is_flag=True,
    help="DEVELOPMENT ONLY: one listener serving everything, without client certificates.",
)
@click.option("--listener", type=click.Choice(["webhook", "public"]), default="webhook", hidden=True)
@click.pass_obj
def serve(
    state: CliState,
    bind: str | None,
    public_bind: str | None,
    workers: int | None,
    threads: int | None,
    insecure_no_client_cert: bool,
    listener: str,
) -> None:
    """Serve the TokenReview webhook over TLS with client certificates (mTLS), and optionally a
    public listener for people.

    \b
    Webhook listener (--bind): POST /authenticate, /healthz, /readyz. Callers must present a
    client certificate signed by server.client_ca (the API server's webhook client certificate
    that `authsvc init` issues; `authsvc webhook-config` writes the API server's side).
    Public listener (--public-bind): POST /login, /.well-known/openid-configuration,
    /openid/v1/jwks, /healthz, /readyz, /metrics; TLS without client certificates.

    \b
    Example:
      authsvc serve --bind 0.0.0.0:8443 --public-bind 0.0.0.0:8444 --workers 2

    /metrics on either listener counts the TokenReviews and logins of every worker of both
    (another worker's counts up to a second late).

    Runs until interrupted (SIGINT/SIGTERM); the public listener stops with it.
    """
    from authsvc.home.layout import HOME_ENV
    from authsvc.wsgi import CONFIG_ENV, LISTENER_ENV

    long_lived_process()
    home = state.home()
    public = listener == "public"
    if public:
        plan = serve_plan(home, bind=bind, workers=workers, threads=threads, insecure=True)
    else:
        plan = serve_plan(home, bind=bind, workers=workers, threads=threads, insecure=insecure_no_client_cert)
        check_backends(home)
        warn_drift(home)
    public_address = public_bind if public_bind is not None else home.settings.server.public_bind
    public_address = public_address if plan.client_ca else ""
    if public or public_address or plan.client_ca is None:
        check_public_listener(home)
    # The hand-over to the workers: authsvc.wsgi reads these, once per process.
    os.environ[HOME_ENV] = str(home.root.resolve())
    os.environ[CONFIG_ENV] = str(home.layout.config_path.resolve())
    os.environ[LISTENER_ENV] = "public" if public else ("all" if plan.client_ca is None else "webhook")
    if public:
        page = ", the self-service page at /" if home.settings.self_service.enabled else ""
        serves = f"no client certificate: /login, discovery{page}"
        click.echo(f"authsvc serve: public listener {plan.url} ({serves})", err=True)
        run_granian(plan)
        return
    clients = f"client certificates required ({plan.client_ca})" if plan.client_ca else "NO client certificate required"
    if plan.client_ca is None:
        click.echo("warning: no client certificates: anyone who can connect can ask about tokens", err=True)
    click.echo(f"authsvc serve: {plan.url} (workers {plan.workers}, threads {plan.threads}, {clients})", err=True)
    with shared_metrics(plan.workers > 1 or bool(public_address)):
        child = start_public_listener(state, plan, public_address) if public_address else None
        try:
            run_granian(plan)
        finally:
            if child is not None:
                stop_child(child)


@contextlib.contextmanager
def shared_metrics(needed: bool) -> Iterator[None]:
    """A private directory (0700, under $TMPDIR) for the run's metrics snapshots, handed to every
    worker and to the public listener through the environment, removed when the run ends: with
    more than one process, each /metrics answer sums them all (authsvc/metrics/share.py).

    Always a fresh one, never one inherited from the caller's environment: snapshots of an
    earlier run would be counted again.
    """
    from authsvc.wsgi import METRICS_DIR_ENV

    os.environ.pop(METRICS_DIR_ENV, None)
    if not needed:
        yield
        return
    directory = tempfile.mkdtemp(prefix="authsvc-metrics-")
    os.environ[METRICS_DIR_ENV] = directory
    try:
        yield
    finally:
        os.environ.pop(METRICS_DIR_ENV, None)
        shutil.rmtree(directory, ignore_errors=True)


def start_public_listener(state: CliState, plan: ServePlan, address: str) -> subprocess.Popen[bytes]:
    """The public listener as a child process: granian serves one TLS configuration per process."""
    parse_bind(address)
    args = [sys.executable, "-m", "authsvc.cli", f"--home={state.home_path}"]
    if state.config_path:
        args.append(f"--config={state.config_path}")
    args += [
        "serve",
        "--listener=public",
        f"--bind={address}",
        f"--workers={plan.workers}",
        f"--threads={plan.threads}",
    ]
    # preexec_fn only sets PDEATHSIG (no locks taken between fork and exec).
    return subprocess.Popen(args, preexec_fn=_die_with_parent)


def _die_with_parent() -> None:
    """Linux: the public listener gets SIGTERM when `authsvc serve` dies, even by SIGKILL."""
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def stop_child(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
