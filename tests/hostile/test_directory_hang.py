"""A hung directory must not hang the webhook (issue 14, item 3).

A real slapd is frozen with SIGSTOP: the kernel still accepts connections and takes requests,
but nothing answers, as with a directory stuck on a disk or a lock. Meanwhile the real
`authsvc serve` (granian, TLS + mTLS, the default workers, threads and directory budget) gets
TokenReviews from four API-server connections at once: tokens from POST /login (their users
are re-checked in the directory), a static token and an external OIDC issuer's JWT (neither
needs the directory), and an invalid token.

The caches are short (1 s webhook cache, 1 s group cache, 1 s stale-if-error) so that the
freeze reaches the answers within the run. kube-apiserver gives up on a webhook after 30 s;
before the fix, LDAP-login reviews took 20-45 s and the unrelated OIDC ones 39 s and more.

Must hold: every review is answered within 5 s; no answer is wrong (a /login token is its own
user, or "authenticated false" with an error, never a plain denial or someone else); the
tokens that do not need the directory stay fast; /readyz says "not ready" at once, not after
the directory's timeouts; after SIGCONT the /login tokens authenticate again without a restart.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from authsvc.home.opened import open_home
from tests.components.slapd import ALICE, BOB, CAROL, Slapd
from tests.components.support import eventually, free_port
from tests.hostile.apiserver_load import (
    ApiServerConnection,
    Probe,
    Reply,
    Verdict,
    apiserver_context,
    hammer,
    send,
    slowest,
    wrong,
)
from tests.ldap.fixtures import ENVIRON as LDAP_ENVIRON
from tests.ldap.fixtures import ldap_settings
from tests.serve.support import authsvc_serve
from tests.webhook.jwks import JWKSServer, server_tls_files

pytestmark = pytest.mark.slapd

DEADLINE = 5.0  # every review, frozen directory or not
FAST = 1.0  # reviews that never need the directory
FROZEN_FOR = 8.0  # > caches (1 s + 1 s stale) + the review budget, so the breaker's open state is seen too
CLIENTS = 4
WORKERS = 2  # server.workers' default
READYZ_EVERY = 0.25  # seconds between two /readyz while frozen (a poll, not a wait for expiry)
STATIC = "hang-static-token-0123456789abcdef"
NOT_LDAP = ("static", "oidc", "invalid")


@dataclass
class Serving:
    home: Path
    slapd: Slapd
    webhook: int
    public: int
    context: ssl.SSLContext
    probes: list[Probe]

    def review(self, probe: Probe) -> Reply:
        connection = ApiServerConnection(self.webhook, self.context)
        try:
            return send(connection, probe, time.monotonic())
        finally:
            connection.close()

    def readyz(self) -> tuple[int, float]:
        """The webhook listener's /readyz (the API server's certificate) and how long it took."""
        connection = ApiServerConnection(self.webhook, self.context)
        started = time.monotonic()
        try:
            status, _ = connection.call("GET", "/readyz")
        finally:
            connection.close()
        return status, time.monotonic() - started


def configure(home: Path, slapd: Slapd, idp: JWKSServer) -> None:
    """Production defaults for the directory's timeouts, pool and review budget; short caches."""
    ldap = ldap_settings(slapd).model_dump(mode="json", exclude_defaults=True)
    for default in ("connect_timeout", "receive_timeout", "pool_size"):
        ldap.pop(default, None)
    config_file = home / "authsvc.yaml"
    config = yaml.safe_load(config_file.read_text())
    config["ldap"] = {**ldap, "group_cache_ttl": "1s", "stale_if_error": "1s"}
    config["login"] = {"backends": ["ldap"], "max_failures_per_user": 1000, "max_failures_per_address": 1000}
    config["authn"].update(
        chain=["tokenfile", "issuers", "authsvc"],
        tokenfile={"path": "tokens.csv"},
        cache_ttl="1s",
        negative_cache_ttl="1s",
        issuers=[{"url": idp.url, "audiences": ["kubernetes"], "ca_file": "pki/ca.crt", "username_prefix": "oidc:"}],
    )
    config_file.write_text(yaml.safe_dump(config))
    (home / "tokens.csv").write_text(f"{STATIC},sam,uid-sam,dev\n")


def login(public: int, context: ssl.SSLContext, uid: str, password: str) -> str:
    """POST /login on the public listener, as `authsvc login` does; the token."""
    connection = http.client.HTTPSConnection("127.0.0.1", public, context=context, timeout=30)
    try:
        basic = base64.b64encode(f"{uid}:{password}".encode()).decode()
        connection.request("POST", "/login", headers={"Authorization": f"Basic {basic}"})
        response = connection.getresponse()
        body = json.loads(response.read())
        assert response.status == 200, body
        return str(body["token"])
    finally:
        connection.close()


@pytest.fixture
def serving(private_slapd: Slapd, home_template: Path, tmp_path: Path) -> Iterator[Serving]:
    home = tmp_path / "home"
    shutil.copytree(home_template, home)
    with JWKSServer(*server_tls_files(open_home(home, environ={}), tmp_path)) as idp:
        configure(home, private_slapd, idp)
        webhook, public = free_port(), free_port()
        env = {**os.environ, **LDAP_ENVIRON, "PYTHONUNBUFFERED": "1"}
        with authsvc_serve(home, tmp_path / "serve.log", webhook=webhook, public=public, workers=WORKERS, env=env):
            people = ssl.create_default_context(cafile=str(home / "pki" / "ca.crt"))
            logins = [
                Probe("ldap-login", login(public, people, u.uid, u.password), u.uid, True) for u in (ALICE, BOB, CAROL)
            ]
            probes = [
                *logins,
                Probe("static", STATIC, "sam"),
                Probe("oidc", idp.token({"sub": "jane"}), "oidc:jane"),
                Probe("invalid", STATIC[:-1] + "x", None),
            ]
            yield Serving(home, private_slapd, webhook, public, apiserver_context(home), probes)
            private_slapd.thaw()


def test_a_frozen_directory_costs_each_review_at_most_its_budget(serving: Serving) -> None:
    for probe in serving.probes:  # the twin: with the directory answering, everyone is right
        reply = serving.review(probe)
        assert reply.verdict in (Verdict.RIGHT, Verdict.DENIED), (probe.kind, reply.detail)
    assert serving.readyz()[0] == 200

    readiness: list[tuple[int, float]] = []

    def poll_readiness() -> None:  # in the calling thread while the load runs
        stop_at = time.monotonic() + FROZEN_FOR
        while time.monotonic() < stop_at:
            readiness.append(serving.readyz())
            time.sleep(READYZ_EVERY)

    serving.slapd.freeze()
    try:
        replies = hammer(
            serving.webhook,
            serving.context,
            serving.probes,
            clients=CLIENTS,
            duration=FROZEN_FOR,
            during=poll_readiness,
        )
    finally:
        serving.slapd.thaw()

    assert replies and not wrong(replies), wrong(replies)[:10]
    assert slowest(replies) < DEADLINE, _latencies(replies)
    assert slowest(replies, NOT_LDAP) < FAST, _latencies(replies)
    # The freeze did reach the answers (else this test could not fail): /login tokens failed closed.
    assert any(r.verdict is Verdict.OUTAGE for r in replies), _latencies(replies)
    # /readyz: never as slow as the directory's timeouts; only the check that finds the hang (at
    # most one per worker process: each has its own breaker) waits out the budget; once it has
    # said 503 it keeps saying so while the directory stays frozen.
    assert all(took < DEADLINE for _, took in readiness), readiness
    assert len([took for _, took in readiness if took >= FAST]) <= WORKERS, readiness
    first = next((i for i, (status, _) in enumerate(readiness) if status == 503), None)
    assert first is not None and all(status == 503 for status, _ in readiness[first:]), readiness

    ldap = next(p for p in serving.probes if p.kind == "ldap-login")
    back = eventually(lambda: serving.review(ldap), lambda r: r.verdict is Verdict.RIGHT, timeout=20)
    assert back.verdict is Verdict.RIGHT, back.detail
    assert eventually(lambda: serving.readyz()[0], lambda s: s == 200, timeout=20) == 200


def _latencies(replies: list[Reply]) -> str:
    kinds = dict.fromkeys(r.probe.kind for r in replies)
    lines = []
    for kind in kinds:
        mine = [r for r in replies if r.probe.kind == kind]
        verdicts = {v.value: sum(r.verdict is v for r in mine) for v in Verdict}
        lines.append(f"{kind}: {len(mine)} reviews, slowest {max(r.latency for r in mine):.2f}s, {verdicts}")
    return "\n".join(lines)
