"""HTTP/1.1 protocol upgrades through the proxy: `kubectl exec`, `attach`, `port-forward`.

kubectl (up to 1.29, and any against a 1.20 API server) asks for `Upgrade: SPDY/3.1`; newer
ones ask for WebSocket. Either way the proxy does what kube-apiserver's own
UpgradeAwareHandler does: it sends the request on a connection of its own to the API server,
and when the answer is `101 Switching Protocols` it answers the client 101 with the API
server's headers and from then on copies bytes both ways until one side closes; any other
answer (403, a 400 for a pod without a node, ...) goes back to the client as it came.

Two libraries, each for what it has a public interface for:
- toward the API server, h11 (a sans-I/O HTTP/1.1 state machine, python-hyper) over an asyncio
  TLS stream: it knows a 101 ends HTTP on the connection (`SWITCHED_PROTOCOL`) and hands back
  the bytes that followed it (`trailing_data`). aiohttp's client exposes such a connection only
  for WebSocket;
- toward the client, the aiohttp server: once the handler has the request it installs a
  payload parser on the connection (`RequestHandler.set_parser`, what aiohttp's own
  WebSocketResponse does) that hands every later byte to an asyncio StreamReader, before the
  101 is sent, so no byte of the new protocol can reach the HTTP parser. aiohttp's HTTP parser
  treats only `websocket` as an upgrade; kubectl sends nothing after a SPDY upgrade request
  until it has the 101, so nothing is parsed as HTTP in between.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable

import h11
from aiohttp import web

from authsvc.proxy.forward import UpstreamUnreachable
from authsvc.proxy.headers import Header, forwarded_response_headers
from authsvc.proxy.upstream import Upstream

CHUNK = 64 * 1024
# An answer that is not a 101 (an error Status) is read whole before it is passed on.
MAX_REFUSAL_BODY = 1024 * 1024
# Framing of the upgrade request is the proxy's: the client's is dropped, a body re-framed.
_FRAMING = frozenset({"content-length", "transfer-encoding"})


class _RawBytes:
    """An aiohttp payload parser that hands the connection's raw bytes to a StreamReader."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader

    def feed_data(self, data: bytes | bytearray | memoryview) -> tuple[bool, bytes]:
        self.reader.feed_data(bytes(data))
        return False, b""

    def feed_eof(self) -> None:
        self.reader.feed_eof()


async def tunnel(
    request: web.Request,
    upstream: Upstream,
    headers: list[Header],
    on_status: Callable[[int], None],
    *,
    connect_timeout: float,
) -> web.StreamResponse:
    """Upgrade through to the API server; raises UpstreamUnreachable before anything was sent down."""
    body = await request.read() if request.body_exists else b""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                upstream.host, upstream.port, ssl=upstream.ssl_context, server_hostname=upstream.host
            ),
            connect_timeout,
        )
    except (TimeoutError, OSError) as e:
        raise UpstreamUnreachable(" ".join(str(e).split()) or "connection timed out") from None
    try:
        connection = h11.Connection(h11.CLIENT)
        try:
            answer = await _request_upgrade(connection, reader, writer, request, upstream, headers, body)
        except (OSError, h11.ProtocolError, asyncio.IncompleteReadError) as e:
            raise UpstreamUnreachable(f"upgrade: {' '.join(str(e).split()) or type(e).__name__}") from None
        on_status(answer.status_code)
        if answer.status_code != 101:
            return await _refusal(connection, reader, answer)
        return await _pipe(request, connection, answer, reader, writer)
    finally:
        writer.close()
        with contextlib.suppress(OSError, asyncio.CancelledError):
            await writer.wait_closed()


async def _request_upgrade(
    connection: h11.Connection,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    request: web.Request,
    upstream: Upstream,
    headers: list[Header],
    body: bytes,
) -> h11.Response | h11.InformationalResponse:
    sent = [("Host", upstream.netloc)] + [(n, v) for n, v in headers if n.lower() not in _FRAMING]
    if body:
        sent.append(("Content-Length", str(len(body))))
    target = upstream.path_prefix + request.raw_path
    writer.write(connection.send(h11.Request(method=request.method, target=target, headers=sent)))
    if body:
        writer.write(connection.send(h11.Data(data=body)))
    writer.write(connection.send(h11.EndOfMessage()))
    await writer.drain()
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            connection.receive_data(await reader.read(CHUNK))
        elif isinstance(event, h11.InformationalResponse) and event.status_code != 101:
            continue  # 100 Continue
        elif isinstance(event, h11.Response | h11.InformationalResponse):
            return event
        elif isinstance(event, h11.ConnectionClosed):
            raise OSError("the API server closed the connection before answering")


async def _refusal(
    connection: h11.Connection, reader: asyncio.StreamReader, answer: h11.Response | h11.InformationalResponse
) -> web.Response:
    """The API server declined the upgrade: its answer, whole, as a plain response."""
    chunks: list[bytes] = []
    size = 0
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            connection.receive_data(await reader.read(CHUNK))
        elif isinstance(event, h11.Data):
            size += len(event.data)
            if size > MAX_REFUSAL_BODY:
                raise UpstreamUnreachable("the API server's answer to an upgrade request is too large")
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            break
    response = web.Response(
        status=answer.status_code, reason=answer.reason.decode("latin-1") or None, body=b"".join(chunks)
    )
    for name, value in forwarded_response_headers(_decoded(answer.headers)):
        if name.lower() != "content-length":
            response.headers.add(name, value)
    return response


async def _pipe(
    request: web.Request,
    connection: h11.Connection,
    answer: h11.Response | h11.InformationalResponse,
    upstream_reader: asyncio.StreamReader,
    upstream_writer: asyncio.StreamWriter,
) -> web.StreamResponse:
    client_reader = asyncio.StreamReader(limit=CHUNK)
    # Paused reading when the API server reads slower than the client writes (flow control).
    client_reader.set_transport(request.transport)  # type: ignore[arg-type]
    request.protocol.set_parser(_RawBytes(client_reader))  # type: ignore[arg-type]
    request.protocol.keep_alive(False)
    response = web.StreamResponse(status=101, reason="Switching Protocols")
    for name, value in forwarded_response_headers(_decoded(answer.headers), upgrade=True):
        response.headers.add(name, value)
    response.force_close()
    await response.prepare(request)
    leftover, _ = connection.trailing_data

    async def down() -> None:
        if leftover:
            await response.write(bytes(leftover))
        while data := await upstream_reader.read(CHUNK):
            await response.write(data)

    async def up() -> None:
        while data := await client_reader.read(CHUNK):
            upstream_writer.write(data)
            await upstream_writer.drain()

    tasks = {asyncio.create_task(down()), asyncio.create_task(up())}
    try:
        # As kube-apiserver's UpgradeAwareHandler: when either side is done, both are.
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            with contextlib.suppress(OSError, ConnectionError):
                task.result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return response


def _decoded(headers: Iterable[tuple[bytes, bytes]]) -> list[Header]:
    return [(bytes(name).decode("latin-1"), bytes(value).decode("latin-1")) for name, value in headers]
