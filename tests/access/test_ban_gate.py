"""The ban gate keeps the bans in memory (issue 23: a database read per minted token was two
thirds of an ES256 issuance): a ban through the same store counts at once, a ban made by
another process within BAN_CACHE_SECONDS, and a read that fails mints nothing. The gate's
monotonic clock is injected: no sleeps."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine

from authsvc.access.bans import BAN_CACHE_SECONDS, AccessRevoked, Ban, BanGate, BanStore
from authsvc.errors import BackendUnavailable
from authsvc.home.opened import Home


class Ticker:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def ban(store: BanStore, home: Home, user: str) -> None:
    assert store.add(Ban(user, home.clock(), "cli:test", "gone"))


def test_a_ban_through_the_same_store_is_refused_at_once_and_a_restore_lets_through(home: Home) -> None:
    store, ticker = home.stores.bans, Ticker()
    gate = BanGate(store, monotonic=ticker)
    gate("alice")  # read once: nobody banned
    ban(store, home, "alice")
    with pytest.raises(AccessRevoked, match="is revoked"):
        gate("ALICE")  # the same clock instant: the store said it changed
    gate("bob")  # the twin: someone else is still minted for
    store.remove("alice")
    gate("alice")


def test_a_ban_by_another_process_is_refused_once_the_copy_is_a_second_old(home: Home) -> None:
    ticker = Ticker()
    gate = BanGate(home.stores.bans, monotonic=ticker)
    gate("alice")
    ban(BanStore(home.stores.engine), home, "alice")  # another process's store, same database
    gate("alice")  # the copy is fresh: not seen yet
    ticker.now += BAN_CACHE_SECONDS
    with pytest.raises(AccessRevoked):
        gate("alice")


def test_a_read_that_fails_mints_nothing_even_with_an_earlier_copy(home: Home, tmp_path: Path) -> None:
    ticker = Ticker()
    store = home.stores.bans
    gate = BanGate(store, monotonic=ticker)
    gate("alice")
    gate.store = BanStore(create_engine(f"sqlite:///{tmp_path / 'no-tables.db'}"))  # the database broke
    gate("alice")  # the copy is fresh
    ticker.now += BAN_CACHE_SECONDS
    with pytest.raises(BackendUnavailable, match="cannot read the access bans"):
        gate("alice")
    with pytest.raises(BackendUnavailable):
        gate("alice")  # no stale copy kept after the failure
    gate.store = store
    gate("alice")  # the database back: minting again


def test_the_home_has_one_gate_and_its_token_service_uses_it(home: Home) -> None:
    assert home.stores.ban_gate is home.stores.ban_gate
    service = home.stores.token_service
    assert service.gate is home.stores.ban_gate
    ban(home.stores.bans, home, "carol")
    with pytest.raises(AccessRevoked):
        service.issue_user_token("carol", ["dev"])
