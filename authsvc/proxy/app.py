"""The proxy's request handler: authenticate, refuse or forward, audit, count.

    client ─TLS─▶ aiohttp ─▶ credential (client certificate, or bearer token → chain on the pool,
                             cached) ─▶ revocation check (in memory) ─▶ 401 / 503 here, or:
                             strip the client's identity headers, add the person's ─▶ API server
                             (aiohttp client, streamed; h11 tunnel for an upgrade) ─▶ audit line

Every path is forwarded (the API server's own /healthz, /metrics and /version included): the
proxy's health and metrics live on a listener of their own (authsvc/proxy/server.py).
"""

from __future__ import annotations

import json
import logging
import ssl
import time

import aiohttp
from aiohttp import web

from authsvc.errors import BackendUnavailable
from authsvc.proxy.audit import record_request
from authsvc.proxy.credentials import Authenticated, Refused
from authsvc.proxy.forward import UpstreamUnreachable, client_session, forward
from authsvc.proxy.headers import forwarded_request_headers, is_upgrade
from authsvc.proxy.request_info import request_info
from authsvc.proxy.runtime import ProxyComponents
from authsvc.proxy.upgrade import tunnel

log = logging.getLogger(__name__)

COMPONENTS = web.AppKey("components", ProxyComponents)
SESSION = web.AppKey("session", aiohttp.ClientSession)
# What the client is told for each refusal (the audit line has the precise reason).
_REFUSALS = {
    401: ("Unauthorized", "Unauthorized"),
    502: ("ServiceUnavailable", "the proxy cannot reach the API server"),
    503: ("ServiceUnavailable", "authentication backend unavailable, try again"),
}


def status_response(code: int, message: str | None = None) -> web.Response:
    """A `Status` as kube-apiserver answers with one (kubectl prints its message)."""
    reason, default = _REFUSALS.get(code, ("BadRequest", "bad request"))
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message or default,
        "reason": reason,
        "code": code,
    }
    return web.Response(status=code, body=json.dumps(body).encode(), content_type="application/json")


def peer_certificate(request: web.Request) -> bytes | None:
    """The client certificate the TLS handshake verified (DER), or None."""
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        return None
    return ssl_object.getpeercert(binary_form=True)


async def handle(request: web.Request) -> web.StreamResponse:
    started = time.perf_counter()
    proxy = request.app[COMPONENTS]
    if not request.raw_path.startswith("/"):
        return status_response(400, "the request target must be a path")
    outcome = await proxy.authenticator.authenticate(request.headers.get("Authorization"), peer_certificate(request))
    if isinstance(outcome, Authenticated):
        try:
            reason = await _revocation_reason(proxy, outcome)
        except BackendUnavailable as e:
            outcome = Refused(503, f"revocation check: {e}", outcome.credential)
        else:
            if reason:
                outcome = Refused(401, reason, outcome.credential)
    if isinstance(outcome, Refused):
        return _refuse(request, proxy, outcome)
    return await _forward(request, proxy, outcome, started)


async def _revocation_reason(proxy: ProxyComponents, authenticated: Authenticated) -> str | None:
    """The per-request revocation check: inline while it answers from memory, on the pool when
    only a database read can answer."""
    check = proxy.revocation
    answered, reason = check.without_blocking(authenticated)
    if not answered:
        reason = await proxy.run_blocking(check, authenticated)
    return reason


def _refuse(request: web.Request, proxy: ProxyComponents, refused: Refused) -> web.Response:
    outcome = {401: "unauthenticated", 503: "unavailable"}.get(refused.status, "refused")
    if refused.status == 401 and "revoked" in refused.reason:
        outcome = "revoked"
    proxy.metrics.request(outcome, refused.status)
    _audit(request, proxy, None, refused.status, refused, reason=refused.reason)
    return status_response(refused.status)


async def _forward(
    request: web.Request, proxy: ProxyComponents, authenticated: Authenticated, started: float
) -> web.StreamResponse:
    upstream = proxy.upstream
    pairs = list(request.headers.items())
    upgrade = is_upgrade(pairs)
    headers = forwarded_request_headers(pairs, identity_names=upstream.identity_names, upgrade=upgrade)
    headers += upstream.headers_for(authenticated.user)
    if request.remote:
        headers.append(("X-Forwarded-For", request.remote))

    def on_status(code: int) -> None:
        proxy.metrics.response_started(time.perf_counter() - started)
        proxy.metrics.request("forwarded", code, authenticated.cached)
        _audit(request, proxy, authenticated, code)

    proxy.metrics.stream(+1)
    try:
        if upgrade:
            proxy.metrics.upgrade()
            timeout = proxy.runtime.settings.proxy.connect_timeout.total_seconds()
            return await tunnel(request, upstream, headers, on_status, connect_timeout=timeout)
        return await forward(request, request.app[SESSION], upstream, headers, on_status)
    except UpstreamUnreachable as e:
        log.warning("proxy: %s %s: API server %s unreachable: %s", request.method, request.path, upstream.url, e)
        proxy.metrics.request("upstream_error", 502)
        _audit(request, proxy, authenticated, 502, reason=f"upstream unreachable: {e}")
        return status_response(502)
    finally:
        proxy.metrics.stream(-1)


def _audit(
    request: web.Request,
    proxy: ProxyComponents,
    authenticated: Authenticated | None,
    code: int,
    refused: Refused | None = None,
    *,
    reason: str = "",
) -> None:
    credential = authenticated.credential if authenticated is not None else (refused.credential if refused else None)
    record_request(
        proxy.runtime.audit,
        proxy.runtime.clock(),
        user=authenticated.user if authenticated is not None else None,
        info=request_info(request.method, request.path, request.query_string),
        method=request.method,
        path=request.path,
        code=code,
        credential=credential,
        client=request.remote or "",
        cached=authenticated.cached if authenticated is not None else None,
        reason=reason,
    )


def create_proxy_app(proxy: ProxyComponents) -> web.Application:
    """The aiohttp application: one catch-all route; the client session lives with the app."""
    app = web.Application(client_max_size=1024**2)
    app[COMPONENTS] = proxy
    app.router.add_route("*", "/{tail:.*}", handle)

    async def session_context(app: web.Application):  # type: ignore[no-untyped-def]
        settings = proxy.runtime.settings.proxy
        app[SESSION] = client_session(
            proxy.upstream,
            max_connections=settings.max_upstream_connections,
            connect_timeout=settings.connect_timeout.total_seconds(),
        )
        yield
        await app[SESSION].close()

    app.cleanup_ctx.append(session_context)
    return app
