"""TokenService behaviour beyond single tokens: init and adoption, replicas, caches, policy."""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Callable
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from authsvc.errors import HomeError
from authsvc.home.opened import Home
from authsvc.init.signing_key import signing_key_step
from authsvc.init.steps import InitContext, initialize_home
from authsvc.settings import Settings
from pki.clock import FixedClock
from pki.errors import KeyUnavailable, PolicyError, TokenRejected
from pki.keys import load_private_key_pem
from pki.tokens import KeyState, SigningKeyStore, TokenService
from pki.tokens.ledger import TokenLedger
from tests.components.support import require_binary
from tests.tokens.conftest import TOKEN_STEPS, Monotonic, independent_kid, make_home, replica


def test_init_creates_active_rs256_key(token_home: Home) -> None:
    key_file, pub_file = token_home.layout.key_path("sa"), token_home.root / "pki" / "sa.pub"
    assert key_file.stat().st_mode & 0o777 == 0o600 and pub_file.stat().st_mode & 0o777 == 0o644
    key = load_private_key_pem(key_file.read_bytes())
    assert key.public_key().key_size == 2048  # type: ignore[union-attr]
    (record,) = token_home.stores.token_service.key_records()
    assert (record.kid, record.state, record.algorithm) == (independent_kid(key.public_key()), KeyState.ACTIVE, "RS256")


def test_init_is_idempotent_and_dry_run_plans(token_home: Home) -> None:
    before = token_home.layout.key_path("sa").read_bytes()
    ctx = InitContext(token_home)
    signing_key_step(ctx)
    assert ctx.written == [] and token_home.layout.key_path("sa").read_bytes() == before
    assert len(token_home.stores.token_service.key_records()) == 1
    token_home.layout.key_path("sa").unlink()
    (token_home.root / "pki" / "sa.pub").unlink()
    dry = InitContext(token_home, dry_run=True)
    signing_key_step(dry)
    assert dry.planned and "sa.key" in dry.planned[0] and not token_home.layout.key_path("sa").exists()


def test_init_refuses_a_public_bundle_without_its_key(tmp_path: Path, clock: FixedClock) -> None:
    root = tmp_path / "home"
    (root / "pki").mkdir(parents=True)
    (root / "pki" / "sa.pub").write_text("-----BEGIN PUBLIC KEY-----\n")
    with pytest.raises(HomeError, match=r"sa\.pub exists without"):
        make_home(root, clock)


def test_es256_home(home_factory: Callable[..., Home]) -> None:
    home = home_factory("es", tokens={"algorithm": "ES256"})
    key = load_private_key_pem(home.layout.key_path("sa").read_bytes())
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    (jwk,) = home.stores.token_service.jwks()["keys"]
    kid = independent_kid(key.public_key())
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["kid"]) == ("EC", "P-256", "ES256", kid)
    token = home.stores.token_service.issue_service_account_token("ci", "x").token
    assert jwt.get_unverified_header(token)["alg"] == "ES256"
    assert home.stores.token_service.verify(token).kid == jwk["kid"]


def test_kubeadm_sa_key_is_adopted_on_first_use(tmp_path: Path, clock: FixedClock) -> None:
    """A kubeadm tree's sa.key (PKCS#1, as openssl genrsa writes it) in a home without signing keys."""
    openssl = require_binary("openssl")
    root = tmp_path / "home"
    (root / "pki").mkdir(parents=True, mode=0o700)
    key_file = root / "pki" / "sa.key"
    subprocess.run([openssl, "genrsa", "-traditional", "-out", key_file, "2048"], check=True, capture_output=True)
    assert b"BEGIN RSA PRIVATE KEY" in key_file.read_bytes()
    without_key_step = [step for step in TOKEN_STEPS if step is not signing_key_step]
    home = initialize_home(root, Settings(), clock=clock, environ={}, steps=without_key_step).home
    service = home.stores.token_service  # an "older" home (or `pki import`): no signing key recorded yet
    token = service.issue_service_account_token("ci", "deployer")
    kid = independent_kid(load_private_key_pem(key_file.read_bytes()).public_key())
    assert service.verify(token.token).kid == kid
    (record,) = service.key_records()
    assert (record.state, record.origin) == (KeyState.ACTIVE, "adopted")
    assert (root / "pki" / "sa.pub").exists()


def test_keys_are_loaded_once(token_home: Home) -> None:
    service = token_home.stores.token_service
    first = service.issue_user_token("alice")
    token_home.layout.key_path("sa").rename(token_home.root / "sa.key.away")
    (token_home.root / "pki" / "sa.pub").unlink()
    second = service.issue_user_token("bob")  # no file read: the private key object was kept
    assert service.verify(first.token).subject == "alice" and service.verify(second.token).subject == "bob"


def test_sa_key_that_is_not_the_active_key_is_refused(token_home: Home, home_factory: Callable[..., Home]) -> None:
    other = home_factory("other")
    token_home.layout.key_path("sa").write_bytes(other.layout.key_path("sa").read_bytes())
    with pytest.raises(KeyUnavailable, match="but the active signing key is"):
        token_home.stores.token_service.issue_user_token("alice")


def test_revocation_reaches_a_replica_within_the_refresh(token_home: Home, clock: FixedClock) -> None:
    monotonic = Monotonic()
    other = replica(token_home, clock, monotonic)
    token = token_home.stores.token_service.issue_user_token("alice")
    assert other.verify(token.token).subject == "alice"  # cached: keys and denylist
    token_home.stores.token_service.revoke(token.jti, reason="test")
    with pytest.raises(TokenRejected, match="revoked"):
        token_home.stores.token_service.verify(token.token)  # at once where it was revoked
    monotonic.now += other.config.cache_refresh.total_seconds() - 1
    assert other.verify(token.token).subject == "alice"  # still inside the refresh interval
    monotonic.now += 2
    with pytest.raises(TokenRejected, match="revoked"):
        other.verify(token.token)


def test_replica_learns_prepared_keys(token_home: Home, clock: FixedClock) -> None:
    monotonic = Monotonic()
    other = replica(token_home, clock, monotonic)
    assert len(other.jwks()["keys"]) == 1
    token_home.stores.token_service.rotate("prepare")
    assert len(other.jwks()["keys"]) == 1
    monotonic.now += 60
    assert len(other.jwks()["keys"]) == 2


def test_lifetime_capped_by_max_ttl(token_home: Home) -> None:
    service = token_home.stores.token_service
    with pytest.raises(PolicyError, match="exceeds the maximum 1d"):
        service.issue_service_account_token("ci", "x", ttl=dt.timedelta(days=2))
    assert service.issue_service_account_token("ci", "x", ttl=dt.timedelta(days=1)).expires_at


def test_privileged_groups_refused_in_user_tokens(token_home: Home, home_factory: Callable[..., Home]) -> None:
    with pytest.raises(PolicyError, match="system:masters"):
        token_home.stores.token_service.issue_user_token("mallory", ["system:masters"])
    allowed = home_factory("breakglass", pki={"policy": {"allowed_groups": ["system:masters"]}})
    token = allowed.stores.token_service.issue_user_token("ops", ["system:masters"])
    assert allowed.stores.token_service.verify(token.token).identity().groups == ("system:masters",)


def test_legacy_tokens_need_uid_and_no_binding(token_home: Home) -> None:
    service = token_home.stores.token_service
    with pytest.raises(PolicyError, match="UID"):
        service.issue_service_account_token("ci", "x", legacy=True)
    with pytest.raises(PolicyError, match="no audience"):
        service.issue_service_account_token("ci", "x", uid="u", legacy=True, audiences=["vault"])
    token = service.issue_service_account_token("ci", "x", uid="u", legacy=True)
    assert token.claims["kubernetes.io/serviceaccount/secret.name"].startswith("x-token-")


def test_token_without_kid_verifies_like_older_apiservers(token_home: Home, clock: FixedClock) -> None:
    key = load_private_key_pem(token_home.layout.key_path("sa").read_bytes())
    claims = token_home.stores.token_service.issue_service_account_token("ci", "x").claims
    assert token_home.stores.token_service.verify(jwt.encode(claims, key, algorithm="RS256")).subject.endswith(":ci:x")


def test_issued_tokens_are_recorded_in_batches(token_home: Home, clock: FixedClock) -> None:
    store = SigningKeyStore(token_home.stores.engine)
    service = TokenService(
        store,
        token_home.stores.signing_key_files,
        token_home.stores.token_service.config,
        clock,
        ledger=TokenLedger(store, batch=8),
    )
    issued = [service.issue_user_token(f"user{i}").jti for i in range(20)]  # 1 at once, then batches of 8
    assert {t.jti for t in store.tokens()} >= set(issued[:17])  # written without a flush
    assert {t.jti for t in service.tokens()} == set(issued)  # tokens() flushes the rest
