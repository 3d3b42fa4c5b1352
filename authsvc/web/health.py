"""`/healthz` (the process is alive), `/readyz` (every backend can answer), `/metrics` (Prometheus)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app

from authsvc.web.app import runtime_of

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> Response:
    return Response("ok\n", mimetype="text/plain")


@blueprint.get("/readyz")
def readyz() -> Response:
    """503 while a configured backend cannot answer (directory down, JWKS unreachable, bad token file)."""
    not_ready = runtime_of(current_app).not_ready()
    if not_ready:
        return Response(f"not ready: {', '.join(not_ready)}\n", 503, mimetype="text/plain")
    return Response("ok\n", mimetype="text/plain")


@blueprint.get("/metrics")
def metrics() -> Response:
    body, content_type = runtime_of(current_app).metrics.render()
    return Response(body, content_type=content_type)
