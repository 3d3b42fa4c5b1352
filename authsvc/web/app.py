"""The Flask application factory.

`create_app(services)` builds a fresh app around an already-loaded `Services` object
(settings, clock, stores): no globals, nothing read from the environment here. Blueprints
are listed in `BLUEPRINTS`, one per concern, with the listeners that serve them.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Literal

from flask import Flask

from authsvc.metrics.server import attach_metrics
from authsvc.runtime import Services

# Which listener serves what. The webhook listener requires the API server's client
# certificate (granian verifies it in the handshake); people and kubelet's probes have none,
# so /login, discovery and the metrics pages live on the public listener. "all" is one
# listener with everything: tests, and `serve --insecure-no-client-cert` for development.
Listener = Literal["webhook", "public", "all"]
EVERYWHERE = frozenset({"webhook", "public"})

# ("module:blueprint", listeners) in registration order.
BLUEPRINTS: list[tuple[str, frozenset[str]]] = [
    ("authsvc.web.health:blueprint", EVERYWHERE),
    ("authsvc.web.webhook:blueprint", frozenset({"webhook"})),
    ("authsvc.web.oidc:blueprint", frozenset({"public"})),
    ("authsvc.web.login:blueprint", frozenset({"public"})),
    ("authsvc.web.rotation_metrics:blueprint", EVERYWHERE),
]


def create_app(services: Services, listener: Listener = "all", metrics_share: Path | None = None) -> Flask:
    """`metrics_share`: the run's directory of metrics snapshots (authsvc/metrics/share.py), so
    that /metrics sums every process of `authsvc serve`; None counts this app alone."""
    app = Flask("authsvc")
    app.config["MAX_CONTENT_LENGTH"] = services.settings.server.max_body_bytes
    app.extensions["authsvc"] = services
    attach_metrics(app, metrics_share)
    for target, listeners in BLUEPRINTS:
        if listener != "all" and listener not in listeners:
            continue
        module_name, attribute = target.split(":")
        app.register_blueprint(getattr(importlib.import_module(module_name), attribute))
    # On every listener, /login or not: see install_components.
    importlib.import_module("authsvc.web.login").install_components(app)
    return app


def services_of(app: Flask) -> Services:
    services: Services = app.extensions["authsvc"]
    return services
