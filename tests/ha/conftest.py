"""Two `authsvc serve` replicas (granian, TLS + mTLS) sharing one real PostgreSQL.

Each replica has a home of its own, as two machines would: replica B's home is a copy of
replica A's PKI and configuration, and both reach the database through database.url_env.
Caches are short (1 s) so that propagation is observed within a test, polled, never slept.
"""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.components.postgres import Postgres
from tests.components.support import free_port
from tests.conftest import run_cli
from tests.e2e.harness import AuthsvcCli, AuthsvcServer, child_env

DATABASE_ENV = "AUTHSVC_DATABASE_URL"
CACHE_TTL_SECONDS = 1
CONFIG = f"""\
database:
  url_env: {DATABASE_ENV}
authn:
  cache_ttl: {CACHE_TTL_SECONDS}s
  negative_cache_ttl: {CACHE_TTL_SECONDS}s
tokens:
  cache_refresh: {CACHE_TTL_SECONDS}s
login:
  backends: [users]
server:
  # Both replicas behind one name, as a load balancer would publish them (discovery names it).
  public_url: https://authsvc.example:8444
"""
LOGIN_USERS = {"carol": "carol-pw", "dave": "dave-pw"}


def authsvc(home: Path, database_url: str, *args: str) -> str:
    """`authsvc --home HOME ARGS` in-process (the real entry point); fails the test unless it exits 0."""
    result = run_cli(args, home=home, env={DATABASE_ENV: database_url})
    assert result.exit_code == 0, f"authsvc {' '.join(args)}: exit {result.exit_code}\n{result.stderr}"
    return result.stdout


@dataclass
class Replica:
    name: str
    home: Path
    database_url: str
    server: AuthsvcServer
    context: ssl.SSLContext
    public_url: str

    def cli(self, *args: str) -> str:
        """The CLI on this replica's machine (its home, the shared database)."""
        return authsvc(self.home, self.database_url, *args)

    def _open(self, request: urllib.request.Request | str) -> tuple[int, bytes]:
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=self.context)
        )
        try:
            with opener.open(request, timeout=15) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def review(self, token: str) -> dict[str, Any]:
        """POST a TokenReview (v1) as the API server does; the reply's status."""
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
        request = urllib.request.Request(
            f"{self.server.url}/authenticate",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        code, answer = self._open(request)
        assert code == 200, (code, answer)
        status: dict[str, Any] = json.loads(answer)["status"]
        return status

    def login(self, user: str, password: str) -> int:
        """POST /login on the public listener with HTTP Basic; the status code."""
        credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
        request = urllib.request.Request(
            f"{self.public_url}/login", headers={"Authorization": f"Basic {credentials}"}, method="POST"
        )
        return self._open(request)[0]

    def ready(self) -> int:
        return self._open(f"{self.server.url}/readyz")[0]

    @property
    def pid(self) -> int | None:
        return self.server.process.pid if self.server.process is not None else None


def client_context(home: Path) -> ssl.SSLContext:
    """What kube-apiserver holds: the cluster CA, and its webhook client certificate."""
    context = ssl.create_default_context(cafile=str(home / "pki" / "ca.crt"))
    pki = home / "pki" / "authsvc"
    context.load_cert_chain(str(pki / "apiserver-webhook-client.crt"), str(pki / "apiserver-webhook-client.key"))
    return context


@pytest.fixture(scope="module")
def replicas(
    postgres_server: Postgres,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Replica, Replica]]:
    if not postgres_server.running:
        postgres_server.start()
    postgres_server.reset_database()
    root = tmp_path_factory.mktemp("ha")
    env = child_env({DATABASE_ENV: postgres_server.url}, home_dir=root)
    home_a, home_b = root / "home-a", root / "home-b"
    home_a.mkdir()
    (home_a / "authsvc.yaml").write_text(CONFIG)
    authsvc(home_a, postgres_server.url, "init")
    for user, password in LOGIN_USERS.items():
        added = run_cli(["users", "add", user, "--password-stdin"], home=home_a, input=f"{password}\n")
        assert added.exit_code == 0, added.stderr
    shutil.copytree(home_a, home_b)  # the second machine: same PKI and config, same database
    started: list[Replica] = []
    try:
        for name, home in (("a", home_a), ("b", home_b)):
            # A real process (granian over TLS + mTLS); AuthsvcServer takes the home and env from this.
            cli = AuthsvcCli(home, env, subprocess=True)
            public = free_port()
            server = AuthsvcServer(cli, f"127.0.0.1:{free_port()}", root / f"serve-{name}.log", public=public)
            context = client_context(home)
            server.start(context)
            started.append(Replica(name, home, postgres_server.url, server, context, f"https://127.0.0.1:{public}"))
        yield started[0], started[1]
    finally:
        for replica in started:
            replica.server.stop()
