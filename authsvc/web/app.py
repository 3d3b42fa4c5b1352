"""The Flask application factory.

`create_app(runtime)` builds a fresh app around an already-built `Runtime` (settings, clock,
stores, the chain and the login side: authsvc/runtime.py): no globals, nothing read from the
environment here. Blueprints are listed in `BLUEPRINTS`, one per concern, with the listeners
that serve them.
"""

from __future__ import annotations

import importlib
from typing import Literal

from flask import Flask

from authsvc.runtime import Runtime

# Which listener serves what. The webhook listener requires the API server's client
# certificate (granian verifies it in the handshake); people and kubelet's probes have none,
# so /login, discovery and the metrics pages live on the public listener. "all" is one
# listener with everything: tests, and `serve --insecure-no-client-cert` for development.
Listener = Literal["webhook", "public", "all"]
EVERYWHERE = frozenset({"webhook", "public"})
RUNTIME_EXTENSION = "authsvc.runtime"

# ("module:blueprint", listeners) in registration order.
BLUEPRINTS: list[tuple[str, frozenset[str]]] = [
    ("authsvc.web.health:blueprint", EVERYWHERE),
    ("authsvc.web.webhook:blueprint", frozenset({"webhook"})),
    ("authsvc.web.oidc:blueprint", frozenset({"public"})),
    ("authsvc.web.login:blueprint", frozenset({"public"})),
    ("authsvc.web.signin:blueprint", frozenset({"public"})),
    ("authsvc.web.authorize:blueprint", frozenset({"public"})),
    ("authsvc.web.self_service:blueprint", frozenset({"public"})),
]


def create_app(runtime: Runtime, listener: Listener = "all") -> Flask:
    app = Flask("authsvc")
    app.config["MAX_CONTENT_LENGTH"] = runtime.settings.server.max_body_bytes
    app.extensions[RUNTIME_EXTENSION] = runtime
    for target, listeners in BLUEPRINTS:
        if listener != "all" and listener not in listeners:
            continue
        module_name, attribute = target.split(":")
        app.register_blueprint(getattr(importlib.import_module(module_name), attribute))
    return app


def runtime_of(app: Flask) -> Runtime:
    runtime: Runtime = app.extensions[RUNTIME_EXTENSION]
    return runtime
