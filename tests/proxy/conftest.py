"""A home wired to a test upstream, and the proxy in front of it (tests/proxy/support.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from authsvc.home.opened import Home, open_home
from pki.clock import FixedClock
from tests.proxy.support import EchoUpstream, RunningProxy, running_proxy

STATIC_TOKEN = "proxy-static-token-0123456789abcdef"
STATIC_USER = "sam"
STATIC_GROUP = "team-a"


@pytest.fixture
def upstream(home: Home) -> Iterator[EchoUpstream]:
    server = EchoUpstream(home)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def proxy_settings(upstream_url: str, **sections: dict[str, object]) -> dict[str, object]:
    settings: dict[str, object] = {
        "proxy": {"upstream": upstream_url, "threads": 4},
        "authn": {"chain": ["tokenfile", "authsvc"], "tokenfile": {"path": "tokens.csv"}},
        "audit": {"path": "audit.log", "flush_ms": 0},
        "tokens": {"cache_refresh": "1s"},
    }
    for name, values in sections.items():
        settings[name] = {**settings.get(name, {}), **values}  # type: ignore[dict-item]
    return settings


def configure(home: Home, clock: FixedClock, settings: dict[str, object]) -> Home:
    """Write authsvc.yaml (and a static token) into the copied home and open it again."""
    (home.root / "authsvc.yaml").write_text(yaml.safe_dump(settings))
    tokens = home.root / "tokens.csv"
    tokens.write_text(f'{STATIC_TOKEN},{STATIC_USER},uid-sam,"{STATIC_GROUP},shared"\n')
    tokens.chmod(0o600)
    return open_home(home.root, clock=clock, environ={})


@pytest.fixture
def proxy_home(home: Home, clock: FixedClock, upstream: EchoUpstream) -> Home:
    return configure(home, clock, proxy_settings(upstream.url))


@pytest.fixture
def proxy(proxy_home: Home) -> Iterator[RunningProxy]:
    with running_proxy(proxy_home) as running:
        yield running


def audit_lines(home: Home) -> list[dict[str, object]]:
    import json

    path: Path = home.root / "audit.log"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
