"""`/healthz`: the process is alive. (`/readyz` and `/metrics` join as backends land.)"""

from __future__ import annotations

from flask import Blueprint, Response

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> Response:
    return Response("ok\n", mimetype="text/plain")
