"""The webhook checks every answer against the revocation set, cached answers included: a revoked
token or a banned user is refused within tokens.cache_refresh whatever authn.cache_ttl says
(issue 18: a revoked token kept working 30.8 s). The set's clock is injected: no sleeps."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import create_engine

from authsvc.access.bans import Ban, BanStore
from authsvc.access.denylist import Denylist
from authsvc.db.schema import open_engine
from authsvc.errors import BackendUnavailable
from authsvc.home.opened import Home, open_home
from authsvc.runtime import Runtime, build_runtime
from authsvc.web.app import create_app
from pki.clock import FixedClock
from pki.profiles import CLIENT

ALICE_TOKEN = "static-alice-token-0123456789abcdef"
BOB_TOKEN = "static-bob-token-0123456789abcdef0"
REFRESH = 5.0


class Ticker:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def webhook_home(home: Home) -> Home:
    """Static tokens for alice and bob, the authsvc backend, a 30 s result cache (the default)."""
    data = home.settings.model_dump(mode="json")
    data["authn"].update({"chain": ["tokenfile", "authsvc"], "cache_ttl": "30s"})
    data["authn"]["tokenfile"]["path"] = "tokens.csv"
    home.layout.config_path.write_text(yaml.safe_dump(data, sort_keys=False))
    (home.root / "tokens.csv").write_text(f"{ALICE_TOKEN},alice,uid-a,dev\n{BOB_TOKEN},bob,uid-b,dev\n")
    return open_home(home.root, clock=home.clock, environ={})


@pytest.fixture
def served(webhook_home: Home) -> tuple[Runtime, Ticker]:
    runtime = build_runtime(webhook_home)
    ticker = Ticker()
    runtime.reviewer.denylist = Denylist(webhook_home.stores.engine, webhook_home.clock, REFRESH, monotonic=ticker)
    return runtime, ticker


def review(runtime: Runtime, token: str) -> dict[str, Any]:
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
    status: dict[str, Any] = create_app(runtime).test_client().post("/authenticate", json=body).json["status"]
    return status


def last_review(home: Home) -> dict[str, Any]:
    import json

    lines = [json.loads(line) for line in (home.root / "audit.log").read_text().splitlines()]
    return [line for line in lines if line["action"] == "tokenreview"][-1]


def test_a_banned_users_cached_token_is_refused_within_cache_refresh(
    served: tuple[Runtime, Ticker], webhook_home: Home, clock: FixedClock
) -> None:
    runtime, ticker = served
    assert review(runtime, ALICE_TOKEN)["authenticated"] is True
    webhook_home.stores.bans.add(Ban("alice", clock(), "cli:test", "left"))

    ticker.now += REFRESH - 0.1  # the set read before the ban is still in force
    assert review(runtime, ALICE_TOKEN)["authenticated"] is True
    ticker.now += 0.2
    refused = review(runtime, ALICE_TOKEN)
    runtime.audit.flush()

    assert refused == {"authenticated": False}  # a definite no: no status.error
    line = last_review(webhook_home)
    assert line["cached"] is True and line["outcome"] == "deny" and line["subject"] == "alice"
    assert "access revoked" in line["reason"]
    assert review(runtime, BOB_TOKEN)["authenticated"] is True  # the twin: bob is not banned


def test_a_ban_covers_every_spelling_of_the_name_and_restore_lets_the_cached_answer_through(
    served: tuple[Runtime, Ticker], webhook_home: Home, clock: FixedClock
) -> None:
    runtime, ticker = served
    assert review(runtime, ALICE_TOKEN)["authenticated"] is True
    webhook_home.stores.bans.add(Ban("ALICE", clock(), "cli:test"))  # another spelling of alice
    ticker.now += REFRESH
    assert review(runtime, ALICE_TOKEN)["authenticated"] is False

    webhook_home.stores.bans.remove("alice")
    ticker.now += REFRESH
    assert review(runtime, ALICE_TOKEN)["authenticated"] is True
    runtime.audit.flush()
    assert last_review(webhook_home)["cached"] is True  # the chain's answer stayed in the cache


def test_a_revoked_authsvc_tokens_cached_answer_is_refused(served: tuple[Runtime, Ticker], webhook_home: Home) -> None:
    runtime, ticker = served
    service = webhook_home.stores.token_service
    alice, bob = service.issue_user_token("alice", ["dev"]), service.issue_user_token("bob", ["dev"])
    assert review(runtime, alice.token)["authenticated"] is True
    assert review(runtime, bob.token)["authenticated"] is True

    service.revoke(alice.jti, reason="test")
    ticker.now += REFRESH

    assert review(runtime, alice.token)["authenticated"] is False
    runtime.audit.flush()
    line = last_review(webhook_home)
    assert line["cached"] is True and line["reason"] == "credential revoked"
    assert review(runtime, bob.token)["authenticated"] is True


def test_revoked_certificates_are_in_the_set_the_proxy_asks(webhook_home: Home, clock: FixedClock) -> None:
    ticker = Ticker()
    denylist = Denylist(webhook_home.stores.engine, clock, REFRESH, monotonic=ticker)
    issued = webhook_home.stores.issuer().create("carol", profile=CLIENT)
    other = webhook_home.stores.issuer().create("carol", profile=CLIENT)
    assert not denylist.is_revoked_or_banned("carol", [issued.record.serial])
    webhook_home.stores.inventory.revoke(issued.record.serial, reason="keyCompromise", now=clock())
    ticker.now += REFRESH
    assert denylist.is_revoked_or_banned("carol", [issued.record.serial])
    assert not denylist.is_revoked_or_banned("carol", [other.record.serial])


def test_a_database_that_goes_away_keeps_the_last_set_and_one_never_read_fails_closed(
    webhook_home: Home, clock: FixedClock, tmp_path: Path
) -> None:
    database = tmp_path / "shared.db"
    engine = open_engine(f"sqlite:///{database}")  # migrated: a database of its own
    BanStore(engine).add(Ban("alice", clock(), "cli:test"))
    ticker = Ticker()
    denylist = Denylist(engine, clock, REFRESH, monotonic=ticker)
    assert denylist.is_revoked_or_banned("alice")

    engine.dispose()
    for path in tmp_path.glob("shared.db*"):  # a real fault: the next read finds no tables
        path.unlink()
    ticker.now += REFRESH
    assert denylist.is_revoked_or_banned("alice")  # the last set read stays in force
    assert not denylist.is_revoked_or_banned("bob")

    never_read = Denylist(engine, clock, REFRESH, monotonic=ticker)
    with pytest.raises(BackendUnavailable, match="cannot be read"):
        never_read.is_revoked_or_banned("bob")


def test_an_identity_is_an_error_answer_while_the_set_was_never_read(
    served: tuple[Runtime, Ticker], webhook_home: Home, tmp_path: Path, clock: FixedClock
) -> None:
    runtime, _ = served
    runtime.reviewer.denylist = Denylist(create_engine(f"sqlite:///{tmp_path / 'empty.db'}"), clock, REFRESH)
    status = review(runtime, ALICE_TOKEN)
    assert status["authenticated"] is False and "revocations" in status["error"]  # fail closed, not cached upstream
    assert review(runtime, "an-unknown-token") == {"authenticated": False}  # a denial needs no set


def test_a_refusal_costs_no_extra_rendering_per_hit(served: tuple[Runtime, Ticker], webhook_home: Home) -> None:
    runtime, _ = served
    webhook_home.stores.bans.add(Ban("alice", dt.datetime.now(dt.UTC), "cli:test"))
    for _ in range(3):
        review(runtime, ALICE_TOKEN)
    [answer] = [entry[0] for entry in runtime.reviewer.cache._entries.values() if entry[0].folded == "alice"]
    assert len(answer.refusals) == 1 and len(answer.renderings) == 1
