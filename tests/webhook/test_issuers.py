"""External JWT/OIDC issuers against a real HTTPS issuer on loopback (discovery, JWKS, rotation)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import ValidationError

from authsvc.authn.issuers import IssuersAuthenticator, IssuerVerifier, key_source
from authsvc.errors import BackendUnavailable, ConfigError
from authsvc.home.opened import Home
from authsvc.identity import UserInfo
from authsvc.settings.authn import IssuerSettings
from pki.clock import FixedClock

from .jwks import DISCOVERY, Issuer, JWKSServer, server_tls_files
from .support import small_home


@pytest.fixture(scope="module")
def module_clock() -> FixedClock:
    return FixedClock(dt.datetime.now(dt.UTC).replace(microsecond=0))


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, module_clock: FixedClock) -> Home:
    return small_home(tmp_path_factory.mktemp("issuers") / "home", module_clock, with_ca=True)


@pytest.fixture
def clock(module_clock: FixedClock) -> Iterator[FixedClock]:
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    module_clock.set(start)
    yield module_clock


@pytest.fixture
def idp(home: Home, tmp_path: Path) -> Iterator[JWKSServer]:
    with JWKSServer(*server_tls_files(home, tmp_path)) as server:
        yield server


def settings_for(server: Issuer, **overrides: Any) -> IssuerSettings:
    return IssuerSettings.model_validate(
        {"url": server.url, "audiences": ["kubernetes"], "ca_file": "pki/ca.crt", **overrides}
    )


def backend_for(home: Home, clock: FixedClock, settings: IssuerSettings) -> IssuersAuthenticator:
    return IssuersAuthenticator([IssuerVerifier(settings, key_source(settings, home.root, clock), clock)])


def test_discovery_then_verify_with_claim_mappings(home: Home, clock: FixedClock, idp: JWKSServer) -> None:
    settings = settings_for(
        idp,
        username_claim="email",
        username_prefix="oidc:",
        groups_prefix="oidc:",
        uid_claim="oid",
        extra_claims={"example.org/tenant": "tid"},
    )
    backend = backend_for(home, clock, settings)
    claims = {"email": "jane@example.org", "groups": ["dev", "ops"], "oid": "u-42", "tid": "acme"}
    assert backend.authenticate(idp.token(claims)) == UserInfo(
        "oidc:jane@example.org",
        "u-42",
        ("oidc:dev", "oidc:ops"),
        {"example.org/tenant": ("acme",)},
        backend="issuers",
    )
    assert idp.requests == {DISCOVERY: 1, "/jwks": 1}
    backend.authenticate(idp.token(claims))
    assert idp.requests == {DISCOVERY: 1, "/jwks": 1}  # keys cached
    assert backend.issuers == frozenset({idp.url}) and backend.ready()


def test_rotation_fetches_the_new_kid_and_unknown_kids_are_rate_limited(
    home: Home, clock: FixedClock, idp: JWKSServer
) -> None:
    backend = backend_for(home, clock, settings_for(idp, jwks_refresh_cooldown="30s"))
    assert backend.authenticate(idp.token()) is not None
    clock.advance(dt.timedelta(seconds=31))
    idp.rotate()
    assert backend.authenticate(idp.token()) is not None  # new kid: fetched once, no restart
    assert idp.requests["/jwks"] == 2
    made_up = idp.token(kid="made-up-kid")
    for _ in range(5):
        assert backend.authenticate(made_up) is None
    assert idp.requests["/jwks"] == 2  # within the cooldown: no new fetch, however many tries
    clock.advance(dt.timedelta(seconds=30))
    assert backend.authenticate(made_up) is None
    assert idp.requests["/jwks"] == 3


def test_keys_are_fetched_again_after_their_ttl(home: Home, clock: FixedClock, idp: JWKSServer) -> None:
    backend = backend_for(home, clock, settings_for(idp, jwks_url=idp.url + "/jwks", jwks_cache_ttl="10m"))
    token = idp.token()
    backend.authenticate(token)
    clock.advance(dt.timedelta(minutes=9))
    backend.authenticate(token)
    assert idp.requests == {"/jwks": 1}  # jwks_url given: no discovery
    clock.advance(dt.timedelta(minutes=1))
    assert backend.authenticate(idp.token(now=clock().timestamp())) is not None
    assert idp.requests == {"/jwks": 2}


def test_unreachable_keys_fail_closed(home: Home, clock: FixedClock, idp: JWKSServer) -> None:
    backend = backend_for(home, clock, settings_for(idp, jwks_refresh_cooldown="30s"))
    idp.up = False
    with pytest.raises(BackendUnavailable, match="keys of issuer"):
        backend.authenticate(idp.token())
    assert backend.ready() is False
    idp.up = True
    with pytest.raises(BackendUnavailable):
        backend.authenticate(idp.token())  # the failure is remembered for the cooldown
    assert idp.requests[DISCOVERY] == 1
    clock.advance(dt.timedelta(seconds=30))
    assert backend.authenticate(idp.token(now=clock().timestamp())) is not None
    assert backend.ready() is True


def test_untrusted_tls_fails_closed(home: Home, clock: FixedClock, idp: JWKSServer) -> None:
    other_ca = home.root / "other-ca.crt"
    other_ca.write_bytes(_self_signed_pem())
    backend = backend_for(home, clock, settings_for(idp, ca_file="other-ca.crt"))
    with pytest.raises(BackendUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        backend.authenticate(idp.token())


def _self_signed_pem() -> bytes:
    from pki.ca import CertificateAuthority
    from pki.store import certs_to_pem

    return certs_to_pem([CertificateAuthority.create_root("other", now=dt.datetime.now(dt.UTC)).certificate])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forged_none(token: str) -> str:
    _, payload, _ = token.split(".")
    return f"{_b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{payload}."


def _hs256_with_public_key(idp: JWKSServer) -> str:
    """The classic forgery: HMAC "signed" with the issuer's public key (PyJWT refuses to make one)."""
    (jwk,) = idp.jwks()["keys"]
    public_pem = jwt.PyJWK(jwk).key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    header = _b64(json.dumps({"alg": "HS256", "kid": idp.kid}).encode())
    payload = _b64(json.dumps({"iss": idp.url, "aud": "kubernetes", "sub": "mallory", "exp": 4_000_000_000}).encode())
    signature = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def test_hostile_tokens_are_refused(home: Home, clock: FixedClock, idp: JWKSServer) -> None:
    backend = backend_for(home, clock, settings_for(idp, required_claims={"tid": "acme"}))
    good = idp.token({"tid": "acme"})
    assert backend.authenticate(good) is not None
    header, payload, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    tampered_payload = _b64(json.dumps({**claims, "sub": "admin"}).encode())
    now = clock().timestamp()
    hostile = {
        "alg none": _forged_none(good),
        "HS256 with the public key": _hs256_with_public_key(idp),
        "tampered payload": f"{header}.{tampered_payload}.{signature}",
        "wrong audience": idp.token({"tid": "acme", "aud": "other"}),
        "no audience": idp.token({"tid": "acme", "aud": None}),
        "required claim wrong": idp.token({"tid": "evil"}),
        "required claim missing": idp.token(),
        "expired": idp.token({"tid": "acme", "exp": now - 31}),
        "not yet valid": idp.token({"tid": "acme", "nbf": now + 31}),
        "issued in the future": idp.token({"tid": "acme", "iat": now + 31}),
        "exp past a float": idp.token({"tid": "acme", "exp": 10**400}),
        "no exp": idp.token({"tid": "acme", "exp": None}),
        "system: user": idp.token({"tid": "acme", "sub": "system:kube-controller-manager"}),
        "system: group": idp.token({"tid": "acme", "groups": ["system:masters"]}),
        "groups not strings": idp.token({"tid": "acme", "groups": [1]}),
        "another issuer": Issuer("https://elsewhere.example").token({"tid": "acme"}),
        "not a JWT": "static-token",
        # The key is picked from a header read without PyJWT's checks (only to choose the key):
        # junk the lenient read skips must still be refused by PyJWT's strict parse.
        "junk in the header": f"{header[:4]}!{header[4:]}.{payload}.{signature}",
        "junk in the payload": f"{header}.{payload[:4]}*{payload[4:]}.{signature}",
        "padding in the header": f"{header}====.{payload}.{signature}",
    }
    for name, token in hostile.items():
        assert backend.authenticate(token) is None, name
    assert backend.authenticate(idp.token({"tid": "acme", "exp": now - 29})) is not None  # within the 30s leeway


def test_expiry_follows_the_injected_clock(home: Home, clock: FixedClock, idp: JWKSServer) -> None:
    backend = backend_for(home, clock, settings_for(idp, leeway=0))
    token = idp.token({"exp": clock().timestamp() + 60}, now=clock().timestamp())
    assert backend.authenticate(token) is not None
    clock.advance(dt.timedelta(seconds=60))
    assert backend.authenticate(token) is None


def test_email_must_be_verified_when_it_is_the_user_name(home: Home, clock: FixedClock, idp: JWKSServer) -> None:
    backend = backend_for(home, clock, settings_for(idp, username_claim="email"))
    assert backend.authenticate(idp.token({"email": "a@example.org", "email_verified": False})) is None
    assert backend.authenticate(idp.token({"email": "a@example.org", "email_verified": True})) is not None


def test_audience_aware_issuers_report_the_token_audiences(home: Home, clock: FixedClock, idp: JWKSServer) -> None:
    backend = backend_for(home, clock, settings_for(idp, audiences=["api", "vault"], audience_aware=True))
    user = backend.authenticate(idp.token({"aud": ["vault", "unlisted"]}))
    assert user is not None and user.audiences == ("vault",)
    agnostic = backend_for(home, clock, settings_for(idp, audiences=["api", "vault"]))
    user = agnostic.authenticate(idp.token({"aud": ["vault"]}))
    assert user is not None and user.audiences == ()


def test_static_jwks_file(home: Home, clock: FixedClock) -> None:
    issuer = Issuer("https://static.example")
    issuer.rotate("RS256")
    (home.root / "static-jwks.json").write_text(json.dumps(issuer.jwks()))
    settings = IssuerSettings(
        url=issuer.url, audiences=("kubernetes",), jwks_file="static-jwks.json", algorithms=("RS256",)
    )
    backend = backend_for(home, clock, settings)
    assert backend.authenticate(issuer.token()) is not None
    assert backend.authenticate(issuer.token(kid="other")) is None
    (home.root / "broken.json").write_text("{")
    with pytest.raises(ConfigError, match=r"broken\.json"):
        backend_for(home, clock, settings.model_copy(update={"jwks_file": "broken.json"}))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"algorithms": ["HS256"]}, "not allowed"),
        ({"algorithms": ["none"]}, "not allowed"),
        ({"url": "http://issuer.example"}, "https://"),
        ({"jwks_url": "http://issuer.example/keys"}, "https://"),
        ({"audiences": []}, "at least 1"),
        ({"timeout": "30s"}, "too long"),
        ({"extra_claims": {"Team": "team"}}, "domain-prefixed"),
        ({"jwks_url": "https://x.example/k", "jwks_file": "k.json"}, "not both"),
    ],
)
def test_settings_refuse_unsafe_issuers(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        IssuerSettings.model_validate({"url": "https://issuer.example", "audiences": ["k"], **overrides})


def test_several_issuers_each_verify_their_own(home: Home, clock: FixedClock, idp: JWKSServer) -> None:
    static = Issuer("https://static.example")
    (home.root / "two-jwks.json").write_text(json.dumps(static.jwks()))
    static_settings = IssuerSettings(url=static.url, audiences=("kubernetes",), jwks_file="two-jwks.json")
    remote_settings = settings_for(idp)
    backend = IssuersAuthenticator(
        [IssuerVerifier(s, key_source(s, home.root, clock), clock) for s in (remote_settings, static_settings)]
    )
    assert backend.authenticate(idp.token({"sub": "remote"})) is not None
    assert backend.authenticate(static.token({"sub": "static"})) is not None
    impostor = Issuer(idp.url)
    impostor.keys = static.keys  # the static issuer's key, claiming to be the remote issuer
    assert backend.authenticate(impostor.token(kid=static.kid)) is None
    assert backend.authenticate(Issuer("https://third.example").token()) is None
