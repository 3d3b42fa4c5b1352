"""The chain: routing by token shape, first identity wins, failing closed, building from config."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import jwt
import pytest

from authsvc.authn import REGISTRY
from authsvc.authn.base import ChainContext, TokenKind
from authsvc.authn.chain import AuthenticatorChain, TokenShape, build_chain, classify
from authsvc.errors import ConfigError
from authsvc.identity import UserInfo
from authsvc.webhook.result_cache import ResultCache
from pki.clock import FixedClock

from .support import FakeBackend, JWTOnlyBackend, small_home

BOOTSTRAP = "abcdef.0123456789abcdef"


def jwt_for(issuer: str, exp: int = 2_000_000_000) -> str:
    return jwt.encode({"iss": issuer, "exp": exp}, "k" * 32, algorithm="HS256")


def odd_jwt(payload: dict[str, object]) -> str:
    """A token with claims PyJWT would refuse to encode (routing must still not crash on them)."""
    parts = [{"alg": "HS256", "typ": "JWT"}, payload]
    encoded = [base64.urlsafe_b64encode(json.dumps(p).encode()).rstrip(b"=").decode() for p in parts]
    return ".".join([*encoded, "c2ln"])


@pytest.mark.parametrize(
    ("token", "shape"),
    [
        (BOOTSTRAP, TokenShape(TokenKind.BOOTSTRAP)),
        ("ABCDEF.0123456789abcdef", TokenShape(TokenKind.OPAQUE)),  # upper case: not kubeadm's format
        ("abcdef.0123456789abcdef0", TokenShape(TokenKind.OPAQUE)),
        (jwt_for("https://one.example"), TokenShape(TokenKind.JWT, "https://one.example", 2_000_000_000.0)),
        ("a.b.c", TokenShape(TokenKind.OPAQUE)),  # three parts that do not decode
        ("static-token", TokenShape(TokenKind.OPAQUE)),
        (odd_jwt({"iss": ["x"], "exp": "soon"}), TokenShape(TokenKind.JWT, None, None)),
        ("a.W10.c", TokenShape(TokenKind.OPAQUE)),  # the payload is JSON but not an object ([])
        ("a.__8.c", TokenShape(TokenKind.OPAQUE)),  # the payload is not UTF-8
        ("a.e30.c", TokenShape(TokenKind.JWT)),  # {}: a JWT without iss, routed to any-issuer backends
    ],
)
def test_classify(token: str, shape: TokenShape) -> None:
    assert classify(token) == shape


def test_routes_jwts_by_issuer_and_bootstrap_tokens_by_shape() -> None:
    any_token = FakeBackend("tokenfile")
    one = JWTOnlyBackend("one", {jwt_for("https://one.example"): UserInfo("jane")})
    chain = AuthenticatorChain([any_token, one])
    assert chain.authenticate(jwt_for("https://two.example")).user is None
    assert (any_token.calls, one.calls) == (1, 0)  # another issuer's JWT never reaches "one"
    assert chain.authenticate(BOOTSTRAP).user is None
    assert (any_token.calls, one.calls) == (2, 0)
    result = chain.authenticate(jwt_for("https://one.example"))
    assert result.user == UserInfo("jane", backend="one")
    assert result.not_after == 2_000_000_000.0


def test_first_identity_wins() -> None:
    first = FakeBackend("first", {"t": UserInfo("from-first")})
    second = FakeBackend("second", {"t": UserInfo("from-second")})
    result = AuthenticatorChain([first, second]).authenticate("t")
    assert result.user is not None and result.user.username == "from-first"
    assert (result.backend, second.calls) == ("first", 0)


def test_an_outage_is_an_error_unless_a_later_backend_vouches() -> None:
    down = FakeBackend("ldap", down=True)
    later = FakeBackend("tokenfile", {"known": UserInfo("bob")})
    chain = AuthenticatorChain([down, later])
    known = chain.authenticate("known")
    assert known.user is not None and known.error is None and known.unavailable == ("ldap",)
    unknown = chain.authenticate("unknown")
    assert unknown.user is None
    assert unknown.error == "authentication backend unavailable: ldap"
    assert AuthenticatorChain([later]).authenticate("unknown").error is None  # a plain no


def test_an_unexpected_exception_fails_closed_and_never_logs_the_token(caplog: pytest.LogCaptureFixture) -> None:
    crashing = FakeBackend("buggy", crash=True)
    caplog.set_level(logging.DEBUG)
    result = AuthenticatorChain([crashing]).authenticate("my-secret-token")
    assert result.user is None and result.unavailable == ("buggy",)
    assert "RuntimeError" in caplog.text
    assert "my-secret-token" not in caplog.text


def test_not_ready_names_the_backends_that_cannot_answer() -> None:
    assert AuthenticatorChain([FakeBackend("a"), FakeBackend("b", down=True)]).not_ready() == ["b"]


def test_build_chain_from_config_leaves_out_unconfigured_backends(tmp_path: Path, clock: FixedClock) -> None:
    home = small_home(tmp_path / "h", clock)  # no token file, no issuers
    assert [b.name for b in build_chain(ChainContext.of(home)).backends] == ["bootstrap"]


def test_unknown_backend_is_a_config_error(tmp_path: Path, clock: FixedClock) -> None:
    home = small_home(tmp_path / "h", clock, authn={"chain": ["tokenfile", "kerberos"]})
    with pytest.raises(ConfigError, match="unknown backend 'kerberos'"):
        build_chain(ChainContext.of(home))
    assert {"tokenfile", "bootstrap", "issuers"} <= set(REGISTRY)


def test_cache_expiry_ttls_and_eviction() -> None:
    cache: ResultCache[str] = ResultCache(ttl=30, negative_ttl=5, max_size=2)
    cache.put(b"yes", "alice", 1000.0, positive=True)
    cache.put(b"no", "denied", 1000.0, positive=False)
    assert cache.get(b"yes", 1029.0) == "alice" and cache.get(b"yes", 1030.0) is None
    assert cache.get(b"no", 1004.0) == "denied" and cache.get(b"no", 1005.0) is None
    cache.put(b"jwt", "jane", 1000.0, positive=True, not_after=1010.0)  # the token's exp caps it
    assert cache.get(b"jwt", 1009.0) == "jane" and cache.get(b"jwt", 1010.0) is None
    for key in (b"a", b"b", b"c"):
        cache.put(key, "x", 2000.0, positive=True)
    assert len(cache) == 2 and cache.get(b"a", 2000.0) is None  # oldest out first
    off: ResultCache[str] = ResultCache(ttl=30, negative_ttl=5, max_size=0)
    off.put(b"k", "x", 0.0, positive=True)
    assert off.get(b"k", 0.0) is None
