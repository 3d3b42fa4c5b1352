"""Bootstrap tokens: the store, the authenticator (expiry by the injected clock) and the CLI."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from sqlalchemy import text

from authsvc.authn.bootstrap import BootstrapAuthenticator, BootstrapTokenStore, check_extra_groups
from authsvc.home.opened import Home
from authsvc.identity import UserInfo
from pki.clock import FixedClock
from pki.errors import NotFoundError
from tests.conftest import run_cli

from .support import small_home

TOKEN_FORMAT = re.compile(r"[a-z0-9]{6}\.[a-z0-9]{16}")
NODE_GROUP = "system:bootstrappers:kubeadm:default-node-token"


@pytest.fixture
def home(tmp_path: Path, clock: FixedClock) -> Home:
    return small_home(tmp_path / "home", clock)


def test_create_authenticate_expire(home: Home, clock: FixedClock) -> None:
    store = BootstrapTokenStore(home.stores.engine)
    token, record = store.create(now=clock(), ttl=dt.timedelta(hours=1), groups=[NODE_GROUP])
    assert TOKEN_FORMAT.fullmatch(token)
    backend = BootstrapAuthenticator(store, clock)
    user = UserInfo(
        f"system:bootstrap:{record.token_id}", groups=("system:bootstrappers", NODE_GROUP), backend="bootstrap"
    )
    assert backend.authenticate(token) == user
    clock.advance(dt.timedelta(minutes=59, seconds=59))
    assert backend.authenticate(token) == user
    clock.advance(dt.timedelta(seconds=1))
    assert backend.authenticate(token) is None  # expired exactly at its expiry


def test_wrong_secret_unknown_id_and_other_shapes_are_refused(home: Home, clock: FixedClock) -> None:
    store = BootstrapTokenStore(home.stores.engine)
    token, _ = store.create(now=clock(), ttl=None)
    token_id, secret = token.split(".")
    backend = BootstrapAuthenticator(store, clock)
    wrong_secret = f"{token_id}.{'0' * 16 if secret != '0' * 16 else '1' * 16}"
    for wrong in (wrong_secret, f"zzzzzz.{secret}", token.upper(), token + "0", "static-token"):
        assert backend.authenticate(wrong) is None
    assert backend.authenticate(token) is not None  # no ttl: no expiry


def test_only_the_secret_hash_is_stored(home: Home, clock: FixedClock) -> None:
    token, _ = BootstrapTokenStore(home.stores.engine).create(now=clock(), ttl=None, description="node-1")
    with home.stores.engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM bootstrap_tokens")).all()
    assert token.split(".")[1] not in repr(rows)


def test_delete(home: Home, clock: FixedClock) -> None:
    store = BootstrapTokenStore(home.stores.engine)
    token, record = store.create(now=clock(), ttl=None)
    store.delete(record.token_id)
    assert BootstrapAuthenticator(store, clock).authenticate(token) is None
    with pytest.raises(NotFoundError, match=record.token_id):
        store.delete(record.token_id)
    with pytest.raises(ValueError, match="6 characters"):
        store.delete("../../x")


@pytest.mark.parametrize("group", ["system:masters", "system:bootstrappers:", "dev", "system:bootstrappers:UPPER"])
def test_extra_groups_must_be_bootstrappers_subgroups(group: str) -> None:
    with pytest.raises(ValueError, match="system:bootstrappers:<name>"):
        check_extra_groups([group])


def test_ready_while_the_database_answers(home: Home, clock: FixedClock) -> None:
    backend = BootstrapAuthenticator(BootstrapTokenStore(home.stores.engine), clock)
    assert backend.ready() is True
    broken = Path(str(home.root / "authsvc.db"))
    home.stores.engine.dispose()
    broken.unlink()
    broken.mkdir()  # a directory where the database file was: every connection fails
    assert backend.ready() is False


def test_cli_create_list_delete(home: Home) -> None:
    created = run_cli(["token", "bootstrap", "create", "--ttl", "2h", "--groups", NODE_GROUP], home=home.root)
    assert created.exit_code == 0, created.stderr
    token = created.stdout.strip()
    assert TOKEN_FORMAT.fullmatch(token)
    listed = run_cli(["token", "bootstrap", "list", "-o", "json"], home=home.root)
    (entry,) = json.loads(listed.stdout)
    assert entry["id"] == token.split(".")[0] and entry["status"] == "valid"
    assert entry["groups"] == ["system:bootstrappers", NODE_GROUP]
    assert token.split(".")[1] not in listed.stdout
    table = run_cli(["token", "bootstrap", "list"], home=home.root)
    assert table.stdout.startswith("ID") and entry["id"] in table.stdout
    assert run_cli(["token", "bootstrap", "delete", entry["id"]], home=home.root).exit_code == 0
    assert json.loads(run_cli(["token", "bootstrap", "list", "-o", "json"], home=home.root).stdout) == []


def test_cli_refusals_are_one_line(home: Home) -> None:
    refused = run_cli(["token", "bootstrap", "create", "--groups", "system:masters"], home=home.root)
    assert refused.exit_code == 1 and refused.stderr.count("\n") == 1 and "system:masters" in refused.stderr
    missing = run_cli(["token", "bootstrap", "delete", "abcdef"], home=home.root)
    assert missing.exit_code == 1 and "abcdef" in missing.stderr
    assert run_cli(["token", "bootstrap", "create", "--ttl", "soon"], home=home.root).exit_code == 2
