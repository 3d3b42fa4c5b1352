"""Replicas sharing one real PostgreSQL inventory: keys, revocations and rotation reach each other."""

from __future__ import annotations

from pathlib import Path

import pytest

from authsvc.init.steps import initialize_home, write_config_step
from authsvc.settings import settings_from_mapping
from pki.clock import FixedClock
from pki.errors import KeyUnavailable, TokenRejected
from tests.tokens.conftest import Monotonic, make_home, replica

pytestmark = pytest.mark.postgres


def test_replicas_share_keys_and_denylist(tmp_path: Path, clock: FixedClock, postgres_url: str) -> None:
    settings = settings_from_mapping({"database": {"url": postgres_url}})
    signer_home = make_home(tmp_path / "signer", clock, settings)  # holds pki/sa.key
    verifier_home = initialize_home(tmp_path / "verifier", settings, clock=clock, environ={},
                                    steps=[write_config_step]).home  # fmt: skip
    tick = Monotonic()
    signer, verifier = replica(signer_home, clock, tick), replica(verifier_home, clock, tick)

    token = signer.issue_service_account_token("ci", "deployer", uid="u-1")
    assert verifier.verify(token.token).subject == "system:serviceaccount:ci:deployer"  # keys come from the database
    with pytest.raises(KeyUnavailable, match=r"sa\.key does not exist"):
        verifier.issue_user_token("alice")  # signing needs the private key file

    verifier.revoke(token.jti, reason="leaked")
    assert signer.verify(token.token).jti == token.jti  # inside the refresh interval
    tick.now += 10
    with pytest.raises(TokenRejected, match="revoked"):
        signer.verify(token.token)
    assert [t.revoked_at is not None for t in verifier.tokens() if t.jti == token.jti] == [True]

    (active,) = signer.key_records()
    prepared = signer.rotate("prepare")
    tick.now += 10
    assert {k["kid"] for k in verifier.jwks()["keys"]} == {active.kid, prepared.kid}
