"""Helpers of the webhook tests: small homes, an app with its audit log, fake backends."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from authsvc.audit.log import AuditLog
from authsvc.authn.base import ALL_KINDS, ANY_ISSUER, TokenKind
from authsvc.authn.chain import AuthenticatorChain
from authsvc.db.schema import migrate_database_step
from authsvc.errors import BackendUnavailable
from authsvc.home.opened import Home
from authsvc.identity import UserInfo
from authsvc.init.steps import InitStep, cluster_ca_step, initialize_home, write_config_step
from authsvc.runtime import Runtime, build_runtime
from authsvc.settings import settings_from_mapping
from authsvc.web.app import create_app
from pki.clock import FixedClock

V1 = "authentication.k8s.io/v1"
V1BETA1 = "authentication.k8s.io/v1beta1"
API_VERSIONS = (V1, V1BETA1)
# Config and database only: enough for the app; the cluster CA only where TLS needs one.
SMALL_HOME: list[InitStep] = [write_config_step, migrate_database_step]
HOME_WITH_CA: list[InitStep] = [*SMALL_HOME, cluster_ca_step]


def small_home(root: Path, clock: FixedClock, *, with_ca: bool = False, **sections: Any) -> Home:
    """A home whose chain is this issue's backends unless `authn` says otherwise."""
    authn = {"chain": ["tokenfile", "bootstrap", "issuers"], **sections.pop("authn", {})}
    settings = settings_from_mapping({"authn": authn, **sections})
    steps = HOME_WITH_CA if with_ca else SMALL_HOME
    return initialize_home(root, settings, clock=clock, environ={}, steps=steps).home


def review_body(token: Any, *, api_version: str = V1, audiences: Sequence[str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"token": token}
    if audiences is not None:
        spec["audiences"] = list(audiences)
    return {"apiVersion": api_version, "kind": "TokenReview", "metadata": {"creationTimestamp": None}, "spec": spec}


@dataclass
class WebhookApp:
    app: Flask
    runtime: Runtime
    audit_path: Path

    @property
    def client(self) -> FlaskClient:
        return self.app.test_client()

    def review(self, token: str, **kwargs: Any) -> TestResponse:
        return self.client.post("/authenticate", json=review_body(token, **kwargs))

    def status(self, token: str, **kwargs: Any) -> dict[str, Any]:
        response = self.review(token, **kwargs)
        assert response.status_code == 200, response.data
        status: dict[str, Any] = response.get_json()["status"]
        return status

    def audit_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.audit_path.read_text().splitlines()]

    def metrics(self) -> str:
        return self.client.get("/metrics").get_data(as_text=True)


def webhook_app(home: Home, chain: AuthenticatorChain | None = None) -> WebhookApp:
    """create_app around `home`, its audit log in a file of its own, optionally a given chain."""
    audit_path = home.root / "test-audit.log"
    audit = AuditLog(os.open(audit_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), owned=True)
    runtime = build_runtime(home, chain=chain, audit=audit)
    return WebhookApp(create_app(runtime), runtime, audit_path)


@dataclass
class FakeBackend:
    """A backend that knows a few tokens, can be switched off, and counts its calls."""

    name: str
    users: dict[str, UserInfo] = field(default_factory=dict)
    down: bool = False
    crash: bool = False
    calls: int = 0
    token_kinds: frozenset[TokenKind] = ALL_KINDS
    issuers: frozenset[str] | None = ANY_ISSUER

    def authenticate(self, token: str) -> UserInfo | None:
        self.calls += 1
        if self.crash:
            raise RuntimeError(f"unexpected failure with {token}")  # the message quotes the token
        if self.down:
            raise BackendUnavailable(f"{self.name} is down")
        return self.users.get(token)

    def ready(self) -> bool:
        return not self.down


@dataclass
class JWTOnlyBackend(FakeBackend):
    token_kinds: frozenset[TokenKind] = frozenset({TokenKind.JWT})
    issuers: frozenset[str] | None = frozenset({"https://one.example"})
