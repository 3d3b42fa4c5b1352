"""The Flask application factory.

`create_app(services)` builds a fresh app around an already-loaded `Services` object
(settings, clock, stores): no globals, nothing read from the environment here. Blueprints
are listed in `BLUEPRINTS`, one per concern.
"""

from __future__ import annotations

import importlib

from flask import Flask

from authsvc.services import Services

# "module:blueprint" in registration order.
BLUEPRINTS: list[str] = [
    "authsvc.web.health:blueprint",
    "authsvc.web.webhook:blueprint",
    "authsvc.web.oidc:blueprint",
    "authsvc.web.login:blueprint",
    "authsvc.web.rotation_metrics:blueprint",
]


def create_app(services: Services) -> Flask:
    app = Flask("authsvc")
    app.config["MAX_CONTENT_LENGTH"] = services.settings.server.max_body_bytes
    app.extensions["authsvc"] = services
    for target in BLUEPRINTS:
        module_name, attribute = target.split(":")
        app.register_blueprint(getattr(importlib.import_module(module_name), attribute))
    return app


def services_of(app: Flask) -> Services:
    services: Services = app.extensions["authsvc"]
    return services
