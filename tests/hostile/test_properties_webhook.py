"""Properties of the TokenReview parser, the webhook endpoint and the token router (authn/chain.py),
with the real backends behind it: a token file, bootstrap tokens, an external issuer (static
JWKS) and authsvc's own tokens.

No input crashes them (no exception, no 5xx, no backend reported "unavailable": the chain's
fail-closed net must not be what stops a malformed token), and nothing authenticates unless it
is one of the valid tokens, as its own user. Bounded: `max_examples` keeps CI fast.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwt.utils import base64url_encode

from authsvc.authn.base import ChainContext
from authsvc.authn.bootstrap import BootstrapTokenStore
from authsvc.authn.chain import AuthenticatorChain, ChainResult, build_chain, classify
from authsvc.home.opened import Home
from authsvc.settings import settings_from_mapping
from authsvc.webhook.tokenreview import API_VERSIONS, InvalidTokenReview, parse_tokenreview
from pki.clock import FixedClock
from pki.tokens.claims import LEGACY_ISSUER
from tests.hostile.forge import tamper_payload
from tests.webhook.jwks import Issuer
from tests.webhook.support import WebhookApp, webhook_app

BOUNDED = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
STATIC = "hostile-static-token-0123456789"
IDP = "https://idp.hostile.example"


@dataclass(frozen=True)
class World:
    chain: AuthenticatorChain
    webhook: WebhookApp
    users: dict[str, str]  # valid token -> the user it authenticates as
    kids: tuple[str, ...]
    issuers: tuple[str, ...]

    def __repr__(self) -> str:  # what hypothesis prints with a failing example
        return "World(...)"


@pytest.fixture(scope="module")
def world(shared_home: Home) -> World:
    root, clock = shared_home.root, FixedClock(dt.datetime.now(dt.UTC).replace(microsecond=0))
    idp = Issuer(IDP)
    (root / "idp-jwks.json").write_text(json.dumps(idp.jwks()))
    (root / "tokens.csv").write_text(f"{STATIC},alice,u-1,dev\n")
    issuer = {"url": IDP, "audiences": ["kubernetes"], "jwks_file": "idp-jwks.json"}
    authn = {"chain": ["tokenfile", "bootstrap", "issuers", "authsvc"], "tokenfile": {"path": "tokens.csv"}}
    config = {**shared_home.settings.model_dump(mode="json"), "authn": {**authn, "issuers": [issuer]}}
    home = Home.of(shared_home.layout, settings_from_mapping(config), clock=clock, environ={})
    bootstrap, record = BootstrapTokenStore(home.stores.engine).create(now=clock(), ttl=dt.timedelta(hours=1))
    service = home.stores.token_service
    users = {
        STATIC: "alice",
        bootstrap: f"system:bootstrap:{record.token_id}",
        idp.token(now=clock().timestamp()): "jane",
        service.issue_user_token("carol", ["dev"]).token: "carol",
    }
    chain = build_chain(ChainContext.of(home))
    kids = (idp.kid, *(k.kid for k in service.published_keys()))
    return World(chain, webhook_app(home, chain), users, kids, (IDP, service.config.issuer, LEGACY_ISSUER))


# -- strategies -------------------------------------------------------------------------------

# Numbers as JSON carries them, floats past their range included (10**400 is a valid JSON number).
numbers = st.integers(-(10**500), 10**500) | st.floats() | st.integers(-(2**40), 2**40)
scalars = st.none() | st.booleans() | numbers | st.text(max_size=24)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def b64(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64url_encode(raw).decode()


@st.composite
def jwt_shaped(draw: st.DrawFn, world: World) -> str:
    """header.payload.signature with the headers and claims that steer routing and verification."""
    algorithms = st.sampled_from(["RS256", "ES256", "ES384", "HS256", "none", "None", "PS256", "EdDSA"])
    header = draw(
        st.fixed_dictionaries(
            {"alg": algorithms | json_values, "kid": st.sampled_from(world.kids) | json_values},
            optional={"typ": json_values, "crit": json_values, "jku": st.just("https://127.0.0.1:1/jwks")},
        )
    )
    claim = st.sampled_from(["iss", "sub", "aud", "exp", "nbf", "iat", "jti", "groups", "kubernetes.io", "uid"])
    payload = draw(st.dictionaries(claim, json_values | numbers, max_size=8))
    if draw(st.booleans()):
        payload["iss"] = draw(st.sampled_from(world.issuers))
    body = draw(st.binary(max_size=64)) if draw(st.integers(0, 9)) == 0 else payload
    return f"{b64(header)}.{b64(body)}.{b64(draw(st.binary(max_size=300)))}"


def tokens(world: World) -> st.SearchStrategy[str]:
    bootstrap_shaped = st.from_regex(r"[a-z0-9]{6}\.[a-z0-9]{16}", fullmatch=True)
    return st.text(max_size=200) | bootstrap_shaped | jwt_shaped(world)


def review_documents(world: World) -> st.SearchStrategy[Any]:
    token = st.sampled_from(sorted(world.users)) | tokens(world) | json_values
    spec = st.fixed_dictionaries({"token": token}, optional={"audiences": json_values}) | json_values
    return st.fixed_dictionaries(
        {"apiVersion": st.sampled_from(API_VERSIONS) | json_values, "kind": st.just("TokenReview") | json_values},
        optional={"spec": spec, "status": json_values, "metadata": json_values},
    )


# -- the parser --------------------------------------------------------------------------------


@BOUNDED
@given(st.binary(max_size=2048))
def test_parser_takes_any_bytes(body: bytes) -> None:
    with contextlib.suppress(InvalidTokenReview):
        parse_tokenreview(body)


@BOUNDED
@given(data=st.data())
def test_parser_returns_the_spec_token_or_says_why_not(world: World, data: st.DataObject) -> None:
    document = data.draw(review_documents(world))
    try:
        request = parse_tokenreview(json.dumps(document).encode())
    except InvalidTokenReview as e:
        token = (document.get("spec") or {}).get("token") if isinstance(document.get("spec"), dict) else None
        assert not (isinstance(token, str) and len(token) >= 8 and token in str(e))  # never quoted
        return
    assert request.api_version in API_VERSIONS and request.token == document["spec"]["token"]
    assert request.token.isascii() and request.token.isprintable() and " " not in request.token


# -- the endpoint ------------------------------------------------------------------------------


@BOUNDED
@given(data=st.data())
def test_the_endpoint_never_fails_and_allows_only_valid_tokens(world: World, data: st.DataObject) -> None:
    document = data.draw(review_documents(world))
    content_type = data.draw(st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain"]))
    response = world.webhook.client.post("/authenticate", data=json.dumps(document), content_type=content_type)
    assert response.status_code in (200, 400, 415), response.data
    status = response.get_json()["status"]
    if status["authenticated"]:
        assert status["user"]["username"] == world.users[document["spec"]["token"]]
    else:
        assert set(status) <= {"authenticated", "error"} and "Traceback" not in response.get_data(as_text=True)


# -- the router --------------------------------------------------------------------------------


@BOUNDED
@given(data=st.data())
def test_the_router_decides_any_token_and_allows_none(world: World, data: st.DataObject) -> None:
    token = data.draw(tokens(world))
    classify(token)
    result = world.chain.authenticate(token)
    assert (result.user, result.unavailable) == (None, ())


@BOUNDED
@given(data=st.data())
def test_a_changed_valid_token_is_no_one_else(world: World, data: st.DataObject) -> None:
    original = data.draw(st.sampled_from(sorted(world.users)))
    at = data.draw(st.integers(0, len(original) - 1))
    replacement = data.draw(st.text(alphabet=st.characters(codec="ascii"), max_size=3))
    token = original[:at] + replacement + original[at + 1 :]
    result = world.chain.authenticate(token)
    assert result.unavailable == ()
    # base64url's last character may carry unused bits: the same signed bytes, the same user.
    assert result.user is None or result.user.username == world.users[original]
    if token.count(".") != original.count(".") or original == STATIC:
        assert result.user is None or token == original


def test_a_100kb_token_reaches_no_one(world: World) -> None:
    """Past the webhook's body limit (413) an operator may raise server.max_body_bytes: the
    backends themselves refuse a padded token, signature kept, without an error."""
    for token in world.users:
        if token.count(".") == 2:
            assert world.chain.authenticate(tamper_payload(token, pad="x" * 100_000)) == ChainResult(None)
