"""Forwarding one HTTP request to the API server and streaming its answer back (aiohttp).

Nothing is buffered: the request body goes up as it arrives, the answer's body comes down
chunk by chunk as the API server writes it (a watch's events, `logs -f`), with aiohttp's flow
control on both legs (a slow client slows the read from the API server; memory stays flat
however long the answer). Bytes are passed as they are: the client session does not
decompress (a large list comes gzip-encoded when kubectl asks for it), and `Content-Length`
is kept when the API server sent one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
from aiohttp import web
from yarl import URL

from authsvc.proxy.headers import Header, forwarded_response_headers
from authsvc.proxy.upstream import Upstream

# Read from the API server in chunks of up to this (aiohttp's default is 64 KiB).
READ_BUFFER = 256 * 1024
# Client headers aiohttp would otherwise add when the client did not send them.
NOT_ADDED = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")


class UpstreamUnreachable(Exception):
    """The API server could not be reached or broke off before its status line."""


def client_session(upstream: Upstream, *, max_connections: int, connect_timeout: float) -> aiohttp.ClientSession:
    """One per proxy process: a pool of keep-alive connections to the API server."""
    connector = aiohttp.TCPConnector(ssl=upstream.ssl_context, limit=max_connections, limit_per_host=max_connections)
    return aiohttp.ClientSession(
        connector=connector,
        auto_decompress=False,
        skip_auto_headers=NOT_ADDED,
        # No overall or read timeout: a watch or `logs -f` lasts as long as the client wants.
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout),
        # Never keep cookies: one session carries every user's requests.
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
        read_bufsize=READ_BUFFER,
    )


def upstream_url(upstream: Upstream, raw_path: str) -> URL:
    """The API server's URL for a request target (path and query exactly as the client sent them)."""
    return URL(upstream.url + raw_path, encoded=True)


async def forward(
    request: web.Request,
    session: aiohttp.ClientSession,
    upstream: Upstream,
    headers: list[Header],
    on_status: Callable[[int], None],
) -> web.StreamResponse:
    """Send the request up, stream the answer down; `on_status` is called with the API server's
    status before its body flows. Raises UpstreamUnreachable before anything was sent down."""
    body = request.content if request.body_exists else None
    try:
        answer = await session.request(
            request.method, upstream_url(upstream, request.raw_path), headers=headers, data=body, allow_redirects=False
        )
    except (TimeoutError, aiohttp.ClientError, OSError) as e:
        raise UpstreamUnreachable(_describe(e)) from None
    completed = False
    try:
        response = web.StreamResponse(status=answer.status, reason=answer.reason)
        for name, value in forwarded_response_headers(answer.headers.items()):
            response.headers.add(name, value)
        on_status(answer.status)
        await response.prepare(request)
        async for chunk in answer.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
        completed = True
        return response
    finally:
        if completed:
            answer.release()  # read to its end: the connection goes back to the pool
        else:
            answer.close()  # the client went away mid-stream (a watch ended by Ctrl-C): drop it


def _describe(error: BaseException) -> str:
    if isinstance(error, asyncio.TimeoutError):
        return "connection timed out"
    return " ".join(str(error).split()) or type(error).__name__
