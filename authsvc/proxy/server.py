"""Running `authsvc proxy`: the TLS listener, the metrics listener, and a clean stop.

- The TLS listener (`proxy.bind`) has the proxy's own serving certificate (`proxy.tls_cert`,
  made by `authsvc init`, signed by the cluster CA) and asks for a client certificate without
  requiring one (`CERT_OPTIONAL`, as kube-apiserver's `VerifyClientCertIfGiven`): one that
  `proxy.client_ca` did not sign fails the handshake; no certificate goes on to the token.
  ALPN offers http/1.1 only: upgrades (exec, attach, port-forward) exist only there.
- The metrics listener (`proxy.metrics_bind`, plain HTTP, usually loopback): `/metrics`,
  `/healthz`, `/readyz` (503 naming the backends that cannot answer now).
- SIGTERM or SIGINT: stop accepting, give requests in flight `SHUTDOWN_GRACE` seconds (a
  watch is ended then: kubectl re-establishes it), flush the audit log.
"""

from __future__ import annotations

import asyncio
import signal
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from authsvc.errors import HomeError
from authsvc.proxy.app import create_proxy_app
from authsvc.proxy.runtime import ProxyComponents

SHUTDOWN_GRACE = 5.0
TLS_VERSIONS = {"tls1.2": ssl.TLSVersion.TLSv1_2, "tls1.3": ssl.TLSVersion.TLSv1_3}


@dataclass(frozen=True, slots=True)
class Listener:
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def server_context(cert: Path, key: Path, client_ca: Path | None, min_version: str) -> ssl.SSLContext:
    """TLS of the proxy's listener. Raises HomeError for files that cannot be used."""
    for path in (cert, key, client_ca):
        if path is not None and not path.is_file():
            raise HomeError(f"{path} does not exist: run `authsvc init` (it makes the proxy's certificate)")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = TLS_VERSIONS[min_version]
    context.set_alpn_protocols(["http/1.1"])
    try:
        context.load_cert_chain(str(cert), str(key), password=_no_passphrase(key))
        if client_ca is not None:
            context.load_verify_locations(cafile=str(client_ca))
            context.verify_mode = ssl.CERT_OPTIONAL
    except ssl.SSLError as e:
        raise HomeError(f"cannot use {cert}, {key} or {client_ca} for the proxy's TLS: {e.reason}") from None
    return context


def _no_passphrase(key: Path) -> Callable[[], str]:
    def refuse() -> str:
        raise HomeError(f"{key} is encrypted: the proxy needs its serving key in clear (mode 0600)")

    return refuse


def metrics_app(proxy: ProxyComponents) -> web.Application:
    runtime = proxy.runtime

    async def metrics(_: web.Request) -> web.Response:
        body, content_type = runtime.metrics.render()
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        not_ready = await proxy.run_blocking(runtime.not_ready)
        if not_ready:
            return web.Response(status=503, text=f"not ready: {', '.join(not_ready)}\n")
        return web.Response(text="ok\n")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


async def serve(
    proxy: ProxyComponents,
    listener: Listener,
    context: ssl.SSLContext,
    metrics_listener: Listener | None,
    *,
    ready: Callable[[], None] = lambda: None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until `stop` is set, or SIGTERM/SIGINT when `stop` is None (the command)."""
    stop = stop or _stop_on_signals()
    runners = [web.AppRunner(create_proxy_app(proxy), access_log=None, shutdown_timeout=SHUTDOWN_GRACE)]
    if metrics_listener is not None:
        runners.append(web.AppRunner(metrics_app(proxy), access_log=None))
    for runner in runners:
        await runner.setup()
    try:
        await web.TCPSite(runners[0], listener.host, listener.port, ssl_context=context, backlog=1024).start()
        if metrics_listener is not None:
            await web.TCPSite(runners[1], metrics_listener.host, metrics_listener.port).start()
        ready()
        await stop.wait()
    finally:
        for runner in runners:
            await runner.cleanup()
        proxy.runtime.audit.flush()


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop
