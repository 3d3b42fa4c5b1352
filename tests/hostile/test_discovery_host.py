"""Discovery against request headers: the URLs authsvc publishes come from its settings only.

The public listener serves `/.well-known/openid-configuration` (and the user issuer's) with
`Cache-Control: public, max-age=3600`. A `jwks_uri` built from the request's Host (or
X-Forwarded-Host, Forwarded, an absolute request target) would let anyone put their own key
set's URL into a document that a shared cache then hands to every verifier. Each row sends such
a request to the real `authsvc serve` (granian, TLS) and checks that the answer names only the
configured URLs: `server.public_url` here is deliberately not the listener's own address.

At start, a configuration without `server.public_url` (and without `tokens.jwks_uri`) is refused
with one line naming the setting, before anything listens; its twins start.
"""

from __future__ import annotations

import http.client
import json
import shutil
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from authsvc.home.opened import open_home
from authsvc.init.steps import initialize_home, write_config_step
from authsvc.settings import Settings
from tests.components.support import free_port, log_tail
from tests.serve.support import authsvc_serve, serve_refusal

PUBLIC_URL = "https://authsvc.example:8444"  # not the listener's address: only the settings can say it
JWKS_URI = f"{PUBLIC_URL}/openid/v1/jwks"
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
USER_ISSUER = "https://authsvc.example/users"
ATTACKER = "attacker.example"
PATHS = ("/.well-known/openid-configuration", "/users/.well-known/openid-configuration", "/openid/v1/jwks")


@dataclass(frozen=True)
class Served:
    port: int
    ca_file: Path
    log: Path


def configure(home: Path, **sections: dict[str, Any]) -> None:
    """Change keys of authsvc.yaml's sections (None removes a key: as if never written)."""
    config = home / "authsvc.yaml"
    settings = yaml.safe_load(config.read_text())
    for section, values in sections.items():
        for key, value in values.items():
            if value is None:
                settings[section].pop(key, None)
            else:
                settings[section][key] = value
    config.write_text(yaml.safe_dump(settings))


@pytest.fixture(scope="module")
def served(home_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("discovery-host") / "home"
    shutil.copytree(home_template, home)
    configure(home, server={"public_url": PUBLIC_URL}, tokens={"user_issuer": USER_ISSUER})
    webhook, public = free_port(), free_port()
    with authsvc_serve(home, home / "serve.log", webhook=webhook, public=public):
        yield Served(public, home / "pki" / "ca.crt", home / "serve.log")


def raw_get(served: Served, target: str, headers: list[tuple[str, str]]) -> tuple[int, dict[str, str], str]:
    """GET `target` over TLS with exactly these headers (Host included, when given); status,
    response headers (lower-case names), body."""
    tls = ssl.create_default_context(cafile=str(served.ca_file))
    connection = http.client.HTTPSConnection("127.0.0.1", served.port, context=tls, timeout=10)
    try:
        connection.putrequest("GET", target, skip_host=any(k.lower() == "host" for k, _ in headers))
        for name, value in headers:
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        head = {k.lower(): v for k, v in response.getheaders()}
        return response.status, head, response.read().decode("utf-8", "replace")
    finally:
        connection.close()


# (row id, request target for the path, headers): what a caller can choose about a request.
HOSTILE_REQUESTS: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("Host", "{path}", [("Host", ATTACKER)]),
    ("Host with a port", "{path}", [("Host", f"{ATTACKER}:443")]),
    ("Host with a path", "{path}", [("Host", f"{ATTACKER}/evil")]),
    ("Host with userinfo", "{path}", [("Host", f"user@{ATTACKER}")]),
    ("two Host headers", "{path}", [("Host", "127.0.0.1"), ("Host", ATTACKER)]),
    ("X-Forwarded-Host", "{path}", [("X-Forwarded-Host", ATTACKER)]),
    (
        "X-Forwarded-Host, -Proto, -Port, -Prefix",
        "{path}",
        [
            ("X-Forwarded-Host", ATTACKER),
            ("X-Forwarded-Proto", "http"),
            ("X-Forwarded-Port", "80"),
            ("X-Forwarded-Prefix", "/evil"),
        ],
    ),
    ("Forwarded (RFC 7239)", "{path}", [("Forwarded", f"for=192.0.2.1;host={ATTACKER};proto=http")]),
    ("X-Original-Host, X-Host", "{path}", [("X-Original-Host", ATTACKER), ("X-Host", ATTACKER)]),
    ("X-Original-URL, X-Rewrite-URL", "{path}", [("X-Original-URL", f"https://{ATTACKER}/x"), ("X-Rewrite-URL", "/x")]),
    ("absolute-form target", f"https://{ATTACKER}{{path}}", []),
    ("absolute-form target and Host", f"https://{ATTACKER}{{path}}", [("Host", ATTACKER)]),
    (
        "everything at once",
        "{path}",
        [("Host", ATTACKER), ("X-Forwarded-Host", ATTACKER), ("Forwarded", f"host={ATTACKER}")],
    ),
]


def test_the_twin_plain_request_names_the_configured_urls(served: Served) -> None:
    status, head, body = raw_get(served, PATHS[0], [])
    assert status == 200, body
    assert json.loads(body)["jwks_uri"] == JWKS_URI and json.loads(body)["issuer"] == SA_ISSUER
    assert head["cache-control"] == "public, max-age=3600"


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("target", "headers"), [r[1:] for r in HOSTILE_REQUESTS], ids=[r[0] for r in HOSTILE_REQUESTS])
def test_request_headers_never_reach_the_documents(
    served: Served, path: str, target: str, headers: list[tuple[str, str]]
) -> None:
    status, head, body = raw_get(served, target.format(path=path), headers)
    assert ATTACKER not in body and ATTACKER not in str(head) and "/evil" not in body
    assert status == 200, body  # answered (a refusal would pass too easily): with the configured URLs
    document = json.loads(body)
    if path.endswith("/jwks"):
        assert set(document) == {"keys"}
    else:
        expected_issuer = USER_ISSUER if path.startswith("/users/") else SA_ISSUER
        assert document["jwks_uri"] == JWKS_URI and document["issuer"] == expected_issuer


def test_the_server_log_has_no_traceback(served: Served) -> None:
    # Last in the module: every row above has been answered.
    assert "Traceback" not in served.log.read_text(errors="replace")


# ---- at start -------------------------------------------------------------------------------


@pytest.fixture
def home(home_template: Path, tmp_path: Path) -> Path:
    root = tmp_path / "home"
    shutil.copytree(home_template, root)
    return root


@pytest.mark.parametrize("public_url", [None, "http://authsvc.example:8444", "https://"])
def test_serve_refuses_to_publish_discovery_without_a_configured_url(home: Path, public_url: str | None) -> None:
    configure(home, server={"public_url": public_url})
    result = serve_refusal(home, public=True)
    assert result.returncode == 1, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ") and "server.public_url" in line and "Traceback" not in result.stderr


def test_the_twin_an_explicit_jwks_uri_is_enough(home: Path, tmp_path: Path) -> None:
    configure(home, server={"public_url": None}, tokens={"jwks_uri": "https://keys.example/jwks"})
    port = free_port()
    with authsvc_serve(home, tmp_path / "serve.log", webhook=free_port(), public=port):
        status, _, body = raw_get(
            Served(port, home / "pki" / "ca.crt", tmp_path / "serve.log"), PATHS[0], [("Host", ATTACKER)]
        )
    assert status == 200 and json.loads(body)["jwks_uri"] == "https://keys.example/jwks"


def test_the_twin_the_webhook_listener_alone_needs_no_public_url(home: Path, tmp_path: Path) -> None:
    configure(home, server={"public_url": None})
    with authsvc_serve(home, tmp_path / "serve.log", webhook=free_port(), public=None) as process:
        assert process.poll() is None, log_tail(tmp_path / "serve.log")


def test_init_writes_a_public_url_for_run_sh(tmp_path: Path) -> None:
    """scripts/run.sh serves the public listener on 127.0.0.1:8444 right after `authsvc init`."""
    root = tmp_path / "home"
    initialize_home(root, Settings(), environ={}, steps=[write_config_step])  # what `init` writes first
    written = yaml.safe_load((root / "authsvc.yaml").read_text())
    assert written["server"]["public_url"] == "https://127.0.0.1:8444"
    assert open_home(root, environ={}).settings.published_jwks_uri() == "https://127.0.0.1:8444/openid/v1/jwks"
