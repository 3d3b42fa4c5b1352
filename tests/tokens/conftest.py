"""Fixtures for the token tests: the shared initialised home, smaller homes with other `tokens:` settings."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from authsvc.db.schema import migrate_database_step
from authsvc.home.opened import Home
from authsvc.init.signing_key import signing_key_step
from authsvc.init.steps import initialize_home, write_config_step
from authsvc.settings import Settings, settings_from_mapping
from pki.clock import FixedClock
from pki.tokens import SigningKeyStore, TokenService

TOKEN_STEPS = [write_config_step, migrate_database_step, signing_key_step]


def make_home(root: Path, clock: FixedClock, settings: Settings | None = None) -> Home:
    return initialize_home(root, settings or Settings(), clock=clock, environ={}, steps=TOKEN_STEPS).home


@pytest.fixture
def token_home(home: Home) -> Home:
    """A copy of the session's initialised home: pki/sa.key (RS256) active, on the injected clock.

    The webhook backend vouches for service-account tokens here (off by default) so that the
    identities it would report can be checked.
    """
    tokens = home.settings.tokens.model_copy(update={"webhook_service_accounts": True})
    settings = home.settings.model_copy(update={"tokens": tokens})
    return Home.of(home.layout, settings, clock=home.clock, environ=home.secrets.environ)


@pytest.fixture
def home_factory(tmp_path: Path, clock: FixedClock) -> Callable[..., Home]:
    """`home_factory(name, tokens={...})`: another home with overridden `tokens:` settings."""

    def build(name: str = "other", **sections: Any) -> Home:
        return make_home(tmp_path / name, clock, settings_from_mapping(sections))

    return build


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def independent_kid(public_key: Any) -> str:
    """kube-apiserver's keyIDFromPublicKey, computed here without pki.tokens.kid."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return b64url(hashlib.sha256(der).digest())


def compact(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    """A JWS compact serialization assembled by hand (for tokens PyJWT refuses to make)."""
    encode = lambda part: b64url(json.dumps(part, separators=(",", ":")).encode())  # noqa: E731
    return f"{encode(header)}.{encode(payload)}.{b64url(signature)}"


class Monotonic:
    """A hand-moved monotonic clock: what the key and denylist caches expire by."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def replica(home: Home, clock: FixedClock, monotonic: Monotonic) -> TokenService:
    """Another server process on the same home and database, with its own caches."""
    return TokenService(
        SigningKeyStore(home.stores.engine),
        home.stores.signing_key_files,
        home.stores.token_service.config,
        clock,
        monotonic=monotonic,
    )
