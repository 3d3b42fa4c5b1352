"""Phased signing-key rotation with an injected clock: prepare → activate → retire."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from authsvc.home.opened import Home
from pki.clock import FixedClock
from pki.errors import RotationError, TokenRejected
from pki.keys import load_private_key_pem
from pki.tokens.signing_keys import KeyState
from tests.conftest import run_cli
from tests.tokens.conftest import independent_kid

HOUR = dt.timedelta(hours=1)


def bundle_kids(home: Home) -> list[str]:
    """kids of the keys in pki/sa.pub, computed independently."""
    text = (home.root / "pki" / "sa.pub").read_text()
    blocks = [b + "-----END PUBLIC KEY-----\n" for b in text.split("-----END PUBLIC KEY-----\n") if b.strip()]
    return [independent_kid(load_pem_public_key(b.encode())) for b in blocks]


def sa_key_kid(home: Home) -> str:
    return independent_kid(load_private_key_pem(home.layout.key_path("sa").read_bytes()).public_key())


def jwks_kids(home: Home) -> list[str]:
    return [k["kid"] for k in home.stores.token_service.jwks()["keys"]]


def test_phase_story(token_home: Home, clock: FixedClock) -> None:
    service = token_home.stores.token_service
    old = sa_key_kid(token_home)
    assert jwks_kids(token_home) == bundle_kids(token_home) == [old]

    prepared = service.rotate("prepare")
    new = prepared.kid
    assert jwks_kids(token_home) == bundle_kids(token_home) == [old, new]  # published, signing key first
    assert sa_key_kid(token_home) == old  # still signing with the old key
    with pytest.raises(RotationError, match="activate after"):
        service.rotate("activate")  # relying parties may still hold the old JWKS

    clock.advance(HOUR)
    last_old = service.issue_service_account_token("ci", "deployer", ttl=2 * HOUR)  # just before activate
    assert service.verify(last_old.token).kid == old

    service.rotate("activate")
    assert sa_key_kid(token_home) == new and jwks_kids(token_home) == [new, old]
    first_new = service.issue_service_account_token("ci", "deployer", ttl=3 * HOUR)
    assert service.verify(first_new.token).kid == new
    assert any((token_home.layout.backups_dir).rglob("sa.key")), "the replaced sa.key is backed up"

    last_exp = last_old.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    with pytest.raises(
        RotationError, match=f"key {old} may still verify .*the last token it signed expires at {last_exp}"
    ):
        service.rotate("retire")
    clock.advance(2 * HOUR - dt.timedelta(seconds=1))
    assert service.verify(last_old.token).kid == old  # keeps verifying to its own exp
    with pytest.raises(RotationError):
        service.rotate("retire")  # not before its exp plus leeway

    clock.advance(service.config.leeway + dt.timedelta(seconds=1))
    service.rotate("retire")
    assert jwks_kids(token_home) == bundle_kids(token_home) == [new]

    clock.set(last_old.expires_at - dt.timedelta(minutes=1))  # back inside its lifetime: only the key is gone
    with pytest.raises(TokenRejected, match="unknown signing key id"):
        service.verify(last_old.token)
    assert service.verify(first_new.token).kid == new


def test_phases_out_of_order_are_refused_with_reason(token_home: Home, clock: FixedClock) -> None:
    service = token_home.stores.token_service
    with pytest.raises(RotationError, match="nothing to activate: prepare a key first"):
        service.rotate("activate")
    with pytest.raises(RotationError, match="nothing to retire"):
        service.rotate("retire")
    prepared = service.rotate("prepare")
    with pytest.raises(RotationError, match=f"key {prepared.kid} is already prepared: activate it first"):
        service.rotate("prepare")
    with pytest.raises(RotationError, match="nothing to retire"):
        service.rotate("retire")
    clock.advance(HOUR)
    service.rotate("activate")
    with pytest.raises(RotationError, match="still retiring: retire it first"):
        service.rotate("prepare")
    with pytest.raises(RotationError, match="is retiring; retire it, then prepare"):
        service.rotate("activate")


def test_rotation_through_the_cli(token_home: Home, clock: FixedClock) -> None:
    def at(offset: dt.timedelta, *args: str) -> tuple[int, str, str]:
        result = run_cli(["--now", (clock() + offset).isoformat(), "keys", *args], home=token_home.root)
        return result.exit_code, result.stdout, result.stderr

    code, out, _ = at(dt.timedelta(0), "rotate", "--phase", "prepare")
    assert code == 0 and "prepared key" in out and "restart kube-apiserver" in out
    code, _, err = at(dt.timedelta(minutes=5), "rotate", "--phase", "activate")
    assert code == 1 and "activate after" in err and err.count("\n") == 1
    code, _, _ = at(dt.timedelta(minutes=5), "rotate", "--phase", "activate", "--force")
    assert code == 0
    code, out, _ = at(dt.timedelta(minutes=6), "list", "-o", "json")
    states = {k["state"] for k in json.loads(out)}
    assert code == 0 and states == {"active", "retiring"}
    code, _, err = at(dt.timedelta(minutes=6), "rotate", "--phase", "retire")
    assert code == 1 and "retire after that" in err
    code, _, _ = at(3 * HOUR, "rotate", "--phase", "retire")
    assert code == 0
    code, out, _ = at(3 * HOUR, "export-public")
    assert code == 0 and out == (token_home.root / "pki" / "sa.pub").read_text() and out.count("BEGIN PUBLIC KEY") == 1
    assert run_cli(["keys", "rotate", "--phase", "retire", "--force"], home=token_home.root).exit_code == 2


def test_interrupted_activation_is_finished_on_next_use(token_home: Home, clock: FixedClock) -> None:
    """The inventory switched keys but the rename of sa-next.key did not happen (crash): signing finishes it."""
    service = token_home.stores.token_service
    prepared = service.rotate("prepare")
    clock.advance(HOUR)
    active = next(k for k in service.key_records() if k.state is KeyState.ACTIVE)
    changes = [(active.kid, KeyState.ACTIVE, KeyState.RETIRING), (prepared.kid, KeyState.NEXT, KeyState.ACTIVE)]
    service.store.transition(changes, clock())
    service.invalidate()
    issued = service.issue_service_account_token("ci", "deployer")
    assert service.verify(issued.token).kid == prepared.kid == sa_key_kid(token_home)
    assert not token_home.layout.key_path("sa-next").exists()
