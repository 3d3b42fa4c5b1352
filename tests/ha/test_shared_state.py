"""Two replicas on one PostgreSQL behave as one service (issue 9): revocations, bootstrap
tokens and outages are seen by both; PostgreSQL down is fail-closed and not ready, and
both recover when it returns, without a restart."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.components.kubelet_probe import kubelet_https_get, probe_succeeds
from tests.components.postgres import Postgres
from tests.e2e.harness import eventually
from tests.ha.conftest import CACHE_TTL_SECONDS, LOGIN_USERS, Replica

pytestmark = pytest.mark.postgres

# Webhook cache TTL + the token service's refresh interval, plus slack for a loaded machine.
PROPAGATION_BOUND = 2 * CACHE_TTL_SECONDS + 8.0


def authenticated(replica: Replica, token: str) -> Callable[[], dict[str, Any]]:
    return lambda: replica.review(token)


def probe(replica: Replica, path: str, listener: str = "public") -> bool:
    """Whether the Deployment's kubelet probe (an HTTPS GET without a client certificate,
    config/kubernetes/deployment.yaml) passes against the replica's `listener`."""
    url = urlsplit(replica.public_url if listener == "public" else replica.server.url)
    assert url.hostname is not None and url.port is not None
    return probe_succeeds(kubelet_https_get(url.hostname, url.port, path))


def wait_for(replica: Replica, token: str, expected: bool) -> tuple[dict[str, Any], float]:
    """Poll until the replica's answer is `expected`; the last answer and the seconds it took."""
    start = time.monotonic()
    status = eventually(authenticated(replica, token), lambda s: s["authenticated"] is expected, PROPAGATION_BOUND)
    return status, time.monotonic() - start


def test_token_revoked_with_the_cli_is_refused_by_both_replicas(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    created = json.loads(a.cli("token", "create-user", "alice", "-g", "dev", "-o", "json"))
    token, jti = created["token"], created["jti"]
    other = json.loads(a.cli("token", "create-user", "bob", "-g", "dev", "-o", "json"))["token"]
    for replica in (a, b):
        status = replica.review(token)
        assert status["authenticated"] is True, (replica.name, status)
        assert status["user"]["username"] == "alice" and "dev" in status["user"]["groups"]

    b.cli("token", "revoke", jti, "--reason", "test")  # through the other machine's home
    for replica in (a, b):
        status, took = wait_for(replica, token, False)
        assert status["authenticated"] is False, (replica.name, status)
        assert "error" not in status  # a definite "no", which the API server may cache
        assert took <= PROPAGATION_BOUND
        assert replica.review(other)["authenticated"] is True  # only the revoked one


def test_bootstrap_token_created_on_one_is_accepted_by_the_other(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    token = a.cli("token", "bootstrap", "create", "--ttl", "1h").strip()
    token_id = token.split(".")[0]
    status = b.review(token)
    assert status["authenticated"] is True, status
    assert status["user"]["username"] == f"system:bootstrap:{token_id}"
    assert "system:bootstrappers" in status["user"]["groups"]
    forged = f"{token_id}.{'0' * 16}"  # the right id, the wrong secret
    assert a.review(forged)["authenticated"] is False
    assert b.review(forged)["authenticated"] is False

    b.cli("token", "bootstrap", "delete", token_id)
    status, _ = wait_for(a, token, False)
    assert status["authenticated"] is False


def test_postgres_down_fails_closed_and_both_recover_without_restart(
    replicas: tuple[Replica, Replica], postgres_server: Postgres
) -> None:
    a, b = replicas
    pids = (a.pid, b.pid)
    token = a.cli("token", "bootstrap", "create", "--ttl", "1h").strip()  # never reviewed: not cached
    assert [a.ready(), b.ready()] == [200, 200]

    postgres_server.stop()
    try:
        for replica in (a, b):
            status = replica.review(token)
            assert status["authenticated"] is False, (replica.name, status)
            assert status.get("error"), status  # "cannot decide": the API server does not cache it
            assert eventually(replica.ready, lambda code: code == 503, PROPAGATION_BOUND) == 503
        assert (probe(a, "/readyz"), probe(a, "/healthz")) == (False, True)  # out of the Service, not restarted
    finally:
        postgres_server.start()

    for replica in (a, b):
        status = eventually(authenticated(replica, token), lambda s: s["authenticated"] is True, PROPAGATION_BOUND)
        assert status["authenticated"] is True, (replica.name, status)
        assert eventually(replica.ready, lambda code: code == 200, PROPAGATION_BOUND) == 200
        assert probe(replica, "/readyz")
    assert (a.pid, b.pid) == pids and all(r.server.process and r.server.process.poll() is None for r in (a, b))


def test_kubelet_probes_pass_on_the_public_listener_only(replicas: tuple[Replica, Replica]) -> None:
    a, _ = replicas
    assert probe(a, "/healthz") and probe(a, "/readyz")
    # The webhook listener refuses kubelet (no client certificate) in the TLS handshake.
    assert not probe(a, "/healthz", listener="webhook") and not probe(a, "/readyz", listener="webhook")


def test_failed_logins_on_one_replica_count_on_the_other(replicas: tuple[Replica, Replica]) -> None:
    """Login rate limits live in the shared database: a replica cannot be used to reset them."""
    a, b = replicas
    assert b.login("dave", LOGIN_USERS["dave"]) == 200  # the twin: logins work on B
    failures = [a.login("carol", "not-her-password") for _ in range(5)]
    assert failures == [401] * 5
    assert b.login("carol", LOGIN_USERS["carol"]) == 429  # her budget is spent everywhere
    assert b.login("dave", LOGIN_USERS["dave"]) == 200  # and only hers
