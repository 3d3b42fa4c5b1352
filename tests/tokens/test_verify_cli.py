"""`authsvc token verify` through the real entry point: valid tokens pass, hostile ones are refused
with the reason in one line (exit 1)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from authsvc.home.opened import Home
from pki.clock import FixedClock
from pki.keys import load_private_key_pem
from tests.conftest import run_cli
from tests.tokens.conftest import b64url, compact, independent_kid

ISSUER = "https://kubernetes.default.svc.cluster.local"


def verify_cli(home: Home, token: str, *extra: str, now: dt.datetime | None = None) -> Any:
    when = ["--now", now.isoformat()] if now else []
    return run_cli([*when, "token", "verify", token, *extra], home=home.root)


def sa_claims(clock: FixedClock, **overrides: Any) -> dict[str, Any]:
    start = int(clock().timestamp())
    claims = {
        "iss": ISSUER,
        "sub": "system:serviceaccount:ci:deployer",
        "aud": [ISSUER],
        "iat": start,
        "nbf": start,
        "exp": start + 600,
        "jti": str(uuid.uuid4()),
        "kubernetes.io": {"namespace": "ci", "serviceaccount": {"name": "deployer", "uid": "u-1"}},
    }
    claims.update(overrides)
    return claims


@pytest.fixture
def sign_with_sa_key(token_home: Home) -> Callable[[dict[str, Any]], str]:
    """Sign claims with the home's real pki/sa.key, by hand (PyJWT directly, kid computed here)."""
    key = load_private_key_pem(token_home.layout.key_path("sa").read_bytes())
    kid = independent_kid(key.public_key())
    return lambda claims: jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def test_created_token_verifies_with_identity(token_home: Home) -> None:
    args = ["token", "create", "-n", "ci", "--serviceaccount", "deployer", "--uid", "u-1"]
    created = run_cli(args, home=token_home.root)
    assert created.exit_code == 0, created.stderr
    result = verify_cli(token_home, created.stdout.strip(), "-o", "json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["username"] == "system:serviceaccount:ci:deployer"
    assert report["groups"] == ["system:serviceaccounts", "system:serviceaccounts:ci"]
    assert report["kid"] == independent_kid(
        load_private_key_pem(token_home.layout.key_path("sa").read_bytes()).public_key()
    )


def test_token_read_from_stdin(token_home: Home) -> None:
    token = token_home.stores.token_service.issue_user_token("alice", ["dev"]).token
    result = run_cli(["token", "verify", "-", "-o", "json"], home=token_home.root, input=token + "\n")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["username"] == "alice"
    assert run_cli(["token", "verify", "-"], home=token_home.root, input="garbage\n").exit_code == 1


def test_hand_signed_twin_verifies(token_home: Home, clock: FixedClock, sign_with_sa_key: Any) -> None:
    """The crafting path below is sound: with good claims, the hand-signed token verifies."""
    result = verify_cli(token_home, sign_with_sa_key(sa_claims(clock)))
    assert result.exit_code == 0, result.stderr


def _alg_none(token_home: Home, clock: FixedClock, _sign: Any) -> str:
    kid = independent_kid(load_private_key_pem(token_home.layout.key_path("sa").read_bytes()).public_key())
    return compact({"alg": "none", "kid": kid, "typ": "JWT"}, sa_claims(clock))


def _hs256_with_public_key(token_home: Home, clock: FixedClock, _sign: Any) -> str:
    """The classic confusion: HMAC keyed with the public key PEM the verifier publishes."""
    secret = (token_home.root / "pki" / "sa.pub").read_bytes()
    kid = independent_kid(load_private_key_pem(token_home.layout.key_path("sa").read_bytes()).public_key())
    header = b64url(json.dumps({"alg": "HS256", "kid": kid, "typ": "JWT"}).encode())
    payload = b64url(json.dumps(sa_claims(clock)).encode())
    mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(mac)}"


def _unknown_kid(token_home: Home, clock: FixedClock, _sign: Any) -> str:
    stranger = rsa.generate_private_key(65537, 2048)
    kid = independent_kid(stranger.public_key())
    return jwt.encode(sa_claims(clock), stranger, algorithm="RS256", headers={"kid": kid})


def _stranger_with_our_kid(token_home: Home, clock: FixedClock, _sign: Any) -> str:
    stranger = rsa.generate_private_key(65537, 2048)
    kid = independent_kid(load_private_key_pem(token_home.layout.key_path("sa").read_bytes()).public_key())
    return jwt.encode(sa_claims(clock), stranger, algorithm="RS256", headers={"kid": kid})


def _tampered_payload(token_home: Home, clock: FixedClock, sign: Any) -> str:
    header, _payload, signature = sign(sa_claims(clock)).split(".")
    forged = sa_claims(clock, sub="system:serviceaccount:kube-system:admin")
    forged["kubernetes.io"] = {"namespace": "kube-system", "serviceaccount": {"name": "admin", "uid": "u-1"}}
    return f"{header}.{b64url(json.dumps(forged).encode())}.{signature}"


def _expired(token_home: Home, clock: FixedClock, sign: Any) -> str:
    start = int(clock().timestamp())
    return str(sign(sa_claims(clock, iat=start - 7200, nbf=start - 7200, exp=start - 3600)))


def _not_yet_valid(token_home: Home, clock: FixedClock, sign: Any) -> str:
    start = int(clock().timestamp())
    return str(sign(sa_claims(clock, nbf=start + 3600, exp=start + 7200)))


def _wrong_issuer(token_home: Home, clock: FixedClock, sign: Any) -> str:
    return str(sign(sa_claims(clock, iss="https://evil.example")))


def _wrong_audience(token_home: Home, clock: FixedClock, sign: Any) -> str:
    return str(sign(sa_claims(clock, aud=["vault"])))


def _no_exp(token_home: Home, clock: FixedClock, sign: Any) -> str:
    claims = sa_claims(clock)
    del claims["exp"]
    return str(sign(claims))


HOSTILE = [
    (_alg_none, "algorithm 'none' is not allowed"),
    (_hs256_with_public_key, "algorithm 'HS256' is not allowed"),
    (_unknown_kid, "unknown signing key id"),
    (_stranger_with_our_kid, "signature does not verify"),
    (_tampered_payload, "signature does not verify"),
    (_expired, "token expired at"),
    (_not_yet_valid, "not valid before"),
    (_wrong_issuer, "issuer is not accepted"),
    (_wrong_audience, "include none of"),
    (_no_exp, "no 'exp' claim"),
]


@pytest.mark.parametrize(("craft", "reason"), HOSTILE, ids=[c.__name__.strip("_") for c, _ in HOSTILE])
def test_hostile_token_refused(
    token_home: Home, clock: FixedClock, sign_with_sa_key: Any, craft: Callable[..., str], reason: str
) -> None:
    result = verify_cli(token_home, craft(token_home, clock, sign_with_sa_key))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: token rejected: ") and reason in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_expiry_and_not_before_follow_the_clock(token_home: Home, clock: FixedClock) -> None:
    issued = token_home.stores.token_service.issue_service_account_token("ci", "deployer", ttl=dt.timedelta(minutes=10))
    assert verify_cli(token_home, issued.token, now=clock() + dt.timedelta(minutes=9)).exit_code == 0
    late = verify_cli(token_home, issued.token, now=clock() + dt.timedelta(minutes=11))
    assert late.exit_code == 1 and "expired" in late.stderr
    early = verify_cli(token_home, issued.token, now=clock() - dt.timedelta(minutes=5))
    assert early.exit_code == 1 and "not valid before" in early.stderr


def test_audience_option(token_home: Home) -> None:
    issued = token_home.stores.token_service.issue_service_account_token("ci", "deployer", audiences=["vault"])
    assert verify_cli(token_home, issued.token, "--audience", "vault").exit_code == 0
    assert verify_cli(token_home, issued.token).exit_code == 1  # not an API server audience
    assert "include none of ['other']" in verify_cli(token_home, issued.token, "--audience", "other").stderr


def test_revoked_token_refused(token_home: Home) -> None:
    created = run_cli(["token", "create-user", "alice", "-g", "dev", "-o", "json"], home=token_home.root)
    issued = json.loads(created.stdout)
    assert verify_cli(token_home, issued["token"]).exit_code == 0
    revoked = run_cli(["token", "revoke", issued["jti"], "--reason", "laptop lost"], home=token_home.root)
    assert revoked.exit_code == 0, revoked.stderr
    result = verify_cli(token_home, issued["token"])
    assert result.exit_code == 1 and f"token {issued['jti']} has been revoked" in result.stderr
    listed = json.loads(run_cli(["token", "list", "-o", "json"], home=token_home.root).stdout)
    assert [t["revokedAt"] is not None for t in listed if t["jti"] == issued["jti"]] == [True]
