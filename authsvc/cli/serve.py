"""`authsvc serve`: the TokenReview webhook (and /healthz, /readyz, /metrics) on granian.

granian's WSGI interface terminates TLS in Rust and verifies client certificates itself
(`ssl_ca` + `ssl_client_verify`): a caller without a certificate from `server.client_ca` never
reaches Python. Never the Flask development server.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from authsvc.cli import CliState

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


def parse_bind(value: str) -> tuple[str, int]:
    """`HOST:PORT` or `[IPv6]:PORT` -> (host, port); UsageError naming the value otherwise."""
    from authsvc.errors import UsageError

    host, sep, port = value.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--bind {value!r} is not HOST:PORT (e.g. 127.0.0.1:8443 or [::1]:8443)")
    return host, int(port)


def serve_plan(home: Any, *, bind: str | None, workers: int | None, threads: int | None, insecure: bool) -> ServePlan:
    """What to run, from the settings and the flags; every file must exist (else: run init)."""
    from authsvc.errors import HomeError

    server = home.settings.server
    host, port = parse_bind(bind or server.bind)
    cert, key = home.path(server.tls_cert), home.path(server.tls_key)
    require_client = server.require_client_cert and not insecure
    client_ca = home.path(server.client_ca) if require_client else None
    client_crl = home.path(server.client_crl) if require_client and server.client_crl else None
    for path in (cert, key, client_ca, client_crl):
        if path is not None and not path.is_file():
            raise HomeError(f"{path} does not exist: run `authsvc init --home {home.root}` (or fix server.* paths)")
    if b"ENCRYPTED" in key.read_bytes()[:64]:
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


def check_backends(home: Any) -> None:
    """Build the chain once here, so a bad token file or JWKS file is one line, not a worker crash."""
    from authsvc.authn.chain import build_chain
    from authsvc.services import Services

    build_chain(Services(home))
    if "engine" in home.__dict__:  # opened by a backend: close it before granian forks the workers
        home.engine.dispose()


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
@click.option("--bind", metavar="HOST:PORT", help="Listen address. [default: server.bind, 127.0.0.1:8443]")
@click.option("--workers", type=click.IntRange(1, 64), help="Worker processes. [default: server.workers]")
@click.option("--threads", type=click.IntRange(1, 64), help="Threads per worker. [default: server.threads]")
@click.option(
    "--insecure-no-client-cert",
    is_flag=True,
    help="DEVELOPMENT ONLY: accept callers without a client certificate from server.client_ca.",
)
@click.pass_obj
def serve(
    state: CliState, bind: str | None, workers: int | None, threads: int | None, insecure_no_client_cert: bool
) -> None:
    """Serve POST /authenticate (TokenReview), /healthz, /readyz and /metrics over TLS.

    Callers must present a client certificate signed by server.client_ca (the API server's
    webhook client certificate that `authsvc init` issues; `authsvc webhook-config` writes the
    API server's side). Runs until interrupted (SIGINT/SIGTERM).
    """
    from authsvc.home import HOME_ENV
    from authsvc.wsgi import CONFIG_ENV

    home = state.home()
    plan = serve_plan(home, bind=bind, workers=workers, threads=threads, insecure=insecure_no_client_cert)
    check_backends(home)
    # The hand-over to the workers: authsvc.wsgi reads these two, once per process.
    os.environ[HOME_ENV] = str(home.root.resolve())
    os.environ[CONFIG_ENV] = str(home.config_path.resolve())
    clients = f"client certificates required ({plan.client_ca})" if plan.client_ca else "NO client certificate required"
    if plan.client_ca is None:
        click.echo("warning: --insecure-no-client-cert: anyone who can connect can ask about tokens", err=True)
    click.echo(f"authsvc serve: {plan.url} (workers {plan.workers}, threads {plan.threads}, {clients})", err=True)
    granian_server(plan).serve()
