"""Real servers for the proxy's tests: the proxy itself (aiohttp, real TLS) and a test upstream.

The upstream stands in for kube-apiserver where the test needs to see what arrives: an aiohttp
server over TLS with the home's own `apiserver.crt` (so the proxy verifies it against pki/ca.crt
as it would the API server), asking for client certificates from the front-proxy CA (what
`--requestheader-client-ca-file` makes kube-apiserver do). It records every request (method,
target, headers, the client certificate's CN, a body digest) and serves:

- `/stream/N`: N chunks, each written only when the test releases it (`release()`): a watch;
- `/bytes/N[?gzip]`: N bytes (optionally declared gzip-encoded), streamed, with Content-Length;
- `/upload`: the SHA-256 and size of the request body;
- an `Upgrade: SPDY/3.1` (or `websocket`) request: 101, then every byte echoed back; with
  `?refuse` a 403 Status instead (what the API server says to a forbidden exec);
- anything else: 200 and a JSON echo.

Both run on event loops of their own threads (`LoopThread`), so tests drive them with plain
blocking clients: requests, ssl sockets, kubectl.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import ssl
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from authsvc.home.opened import Home
from authsvc.proxy.runtime import ProxyComponents, build_proxy
from authsvc.proxy.server import Listener, serve, server_context
from authsvc.runtime import build_runtime

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LoopThread:
    """An asyncio event loop running in a daemon thread; `run(coro)` waits for the result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass
class Seen:
    method: str
    target: str
    headers: list[tuple[str, str]]
    client_cn: str | None
    body_sha256: str = ""

    def values(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n.lower() == name.lower()]


@dataclass
class EchoUpstream:
    home: Home
    port: int = field(default_factory=free_port)
    seen: list[Seen] = field(default_factory=list)
    _gates: dict[int, asyncio.Event] = field(default_factory=dict)
    _loop: LoopThread | None = None
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._loop = LoopThread()
        self._loop.run(self._start())

    def stop(self) -> None:
        if self._loop is not None:
            if self._runner is not None:
                self._loop.run(self._runner.cleanup())
            self._loop.stop()

    def release(self, chunk: int) -> None:
        """Let /stream write chunk number `chunk`."""
        assert self._loop is not None
        self._loop.loop.call_soon_threadsafe(self._gate(chunk).set)

    def _gate(self, chunk: int) -> asyncio.Event:
        return self._gates.setdefault(chunk, asyncio.Event())

    async def _start(self) -> None:
        pki = self.home.root / "pki"
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(pki / "apiserver.crt", pki / "apiserver.key")
        context.load_verify_locations(pki / "front-proxy-ca.crt")
        context.verify_mode = ssl.CERT_OPTIONAL
        app = web.Application(client_max_size=64 * 1024**2)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=context).start()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        seen = Seen(request.method, request.raw_path, list(request.headers.items()), _peer_cn(request))
        self.seen.append(seen)
        if "upgrade" in request.headers.get("Connection", "").lower():
            return await self._upgrade(request)
        path = request.path
        if path == "/upload":
            digest, size = hashlib.sha256(), 0
            async for chunk in request.content.iter_any():
                digest.update(chunk)
                size += len(chunk)
            seen.body_sha256 = digest.hexdigest()
            return web.json_response({"sha256": seen.body_sha256, "size": size})
        if path.startswith("/stream/"):
            return await self._stream(request, int(path.rsplit("/", 1)[1]))
        if path.startswith("/bytes/"):
            return await self._bytes(request, int(path.rsplit("/", 1)[1]))
        return web.json_response({"method": request.method, "target": request.raw_path})

    async def _stream(self, request: web.Request, count: int) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for number in range(count):
            await self._gate(number).wait()
            await response.write(json.dumps({"type": "ADDED", "n": number}).encode() + b"\n")
        await response.write_eof()
        return response

    async def _bytes(self, request: web.Request, size: int) -> web.StreamResponse:
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        if "gzip" in request.query:
            headers["Content-Encoding"] = "gzip"  # not really: the proxy must not decode it
        response = web.StreamResponse(headers=headers)
        await response.prepare(request)
        block = pattern_block()
        sent = 0
        while sent < size:
            part = block[: min(len(block), size - sent)]
            await response.write(part)
            sent += len(part)
        await response.write_eof()
        return response

    async def _upgrade(self, request: web.Request) -> web.StreamResponse:
        if "refuse" in request.query:
            body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403}
            return web.json_response(body, status=403)
        from authsvc.proxy.upgrade import _RawBytes  # the same takeover the proxy uses

        reader = asyncio.StreamReader()
        request.protocol.set_parser(_RawBytes(reader))  # type: ignore[arg-type]
        response = web.StreamResponse(
            status=101,
            headers={
                "Connection": "Upgrade",
                "Upgrade": request.headers["Upgrade"],
                "X-Stream-Protocol-Version": "v4.channel.k8s.io",
            },
        )
        response.force_close()
        await response.prepare(request)
        await response.write(b"hello from upstream\n")
        while data := await reader.read(65536):
            await response.write(data)
        return response


def pattern_block() -> bytes:
    """1 MiB of non-repeating-looking bytes (a digest chain), so a lost or doubled chunk shows."""
    out, seed = bytearray(), b"authsvc"
    while len(out) < 1024 * 1024:
        seed = hashlib.sha256(seed).digest()
        out += seed
    return bytes(out[: 1024 * 1024])


def _peer_cn(request: web.Request) -> str | None:
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport else None
    cert = ssl_object.getpeercert() if ssl_object is not None else None
    if not cert:
        return None
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


@dataclass
class RunningProxy:
    components: ProxyComponents
    port: int
    metrics_port: int
    loop: LoopThread
    stop_event: asyncio.Event
    task: Any

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}"


@contextmanager
def running_proxy(home: Home, **options: Any) -> Iterator[RunningProxy]:
    """`authsvc proxy` in-process on real TLS: build_runtime + build_proxy + serve, as the command."""
    settings = home.settings.proxy
    context = server_context(
        home.layout.path(settings.tls_cert),
        home.layout.path(settings.tls_key),
        home.layout.path(settings.client_ca),
        settings.tls_min_version,
    )
    runtime = options.pop("runtime", None) or build_runtime(home)
    components = build_proxy(runtime, **options)
    port, metrics_port = free_port(), free_port()
    loop = LoopThread()
    started = threading.Event()

    async def make_event() -> asyncio.Event:
        return asyncio.Event()

    stop_event = loop.run(make_event())
    task = asyncio.run_coroutine_threadsafe(
        serve(
            components,
            Listener("127.0.0.1", port),
            context,
            Listener("127.0.0.1", metrics_port),
            ready=started.set,
            stop=stop_event,
        ),
        loop.loop,
    )
    if not started.wait(15):
        task.result(1)  # raises what kept it from starting
        raise RuntimeError("the proxy did not start")
    try:
        yield RunningProxy(components, port, metrics_port, loop, stop_event, task)
    finally:
        loop.loop.call_soon_threadsafe(stop_event.set)
        task.result(15)
        loop.stop()
        components.close()


def home_paths(home: Home) -> dict[str, Path]:
    pki = home.root / "pki"
    return {"ca": pki / "ca.crt", "front_proxy_ca": pki / "front-proxy-ca.crt"}
