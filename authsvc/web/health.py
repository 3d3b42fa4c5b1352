"""`/healthz` (the process is alive), `/readyz` (every backend can answer), `/metrics` (Prometheus)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app

from authsvc.authn.chain import chain_of
from authsvc.metrics.server import metrics_for
from authsvc.web.app import services_of

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> Response:
    return Response("ok\n", mimetype="text/plain")


@blueprint.get("/readyz")
def readyz() -> Response:
    """503 while a configured backend cannot answer (directory down, JWKS unreachable, bad token file)."""
    services = services_of(current_app)
    not_ready = chain_of(services).not_ready()
    # Backends outside the chain that it depends on, e.g. the directory behind /login tokens
    # (registered by authsvc.login.wiring as services.components["readiness"][name] = ready).
    not_ready += [name for name, ready in services.components.get("readiness", {}).items() if not ready()]
    if not_ready:
        return Response(f"not ready: {', '.join(not_ready)}\n", 503, mimetype="text/plain")
    return Response("ok\n", mimetype="text/plain")


@blueprint.get("/metrics")
def metrics() -> Response:
    body, content_type = metrics_for(current_app).render()
    return Response(body, content_type=content_type)
