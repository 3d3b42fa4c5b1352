"""Discovery and JWKS served by the real Flask app over HTTP on loopback, read by PyJWKClient."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator

import jwt
import pytest
from werkzeug.serving import make_server

from authsvc.home.opened import Home
from authsvc.runtime import build_runtime
from authsvc.web.app import create_app
from pki.keys import load_private_key_pem
from tests.tokens.conftest import independent_kid

ISSUER = "https://kubernetes.default.svc.cluster.local"


@pytest.fixture
def base_url(token_home: Home) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, create_app(build_runtime(token_home)), threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def get(url: str) -> tuple[dict[str, object], dict[str, str]]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read()), dict(response.headers)


def test_pyjwkclient_verifies_with_fetched_key(token_home: Home, base_url: str) -> None:
    issued = token_home.stores.token_service.issue_service_account_token("ci", "deployer", uid="u-1")
    client = jwt.PyJWKClient(f"{base_url}/openid/v1/jwks", cache_jwk_set=False)
    signing_key = client.get_signing_key_from_jwt(issued.token)
    expected_kid = independent_kid(load_private_key_pem(token_home.layout.key_path("sa").read_bytes()).public_key())
    assert signing_key.key_id == expected_kid
    claims = jwt.decode(issued.token, signing_key, algorithms=["RS256"], audience=ISSUER, issuer=ISSUER)
    assert claims["sub"] == "system:serviceaccount:ci:deployer"


def test_pyjwkclient_finds_no_key_for_a_stranger(token_home: Home, base_url: str) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    stranger = rsa.generate_private_key(65537, 2048)
    kid = independent_kid(stranger.public_key())
    token = jwt.encode({"sub": "x"}, stranger, algorithm="RS256", headers={"kid": kid})
    client = jwt.PyJWKClient(f"{base_url}/openid/v1/jwks", cache_jwk_set=False)
    with pytest.raises(jwt.PyJWKClientError, match="Unable to find a signing key"):
        client.get_signing_key_from_jwt(token)


def test_discovery_and_jwks_shapes(token_home: Home, base_url: str) -> None:
    discovery, headers = get(f"{base_url}/.well-known/openid-configuration")
    assert discovery == {
        "issuer": ISSUER,
        # From the settings, not from the address this request came to (tests/hostile/test_discovery_host.py).
        "jwks_uri": f"{token_home.settings.server.public_url}/openid/v1/jwks",
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }
    assert headers["Content-Type"] == "application/json" and headers["Cache-Control"] == "public, max-age=3600"
    keyset, headers = get(f"{base_url}/openid/v1/jwks")
    assert headers["Content-Type"] == "application/jwk-set+json" and headers["Cache-Control"] == "public, max-age=3600"
    (key,) = keyset["keys"]  # type: ignore[misc]
    assert set(key) == {"use", "kty", "kid", "alg", "n", "e"} and (key["use"], key["kty"], key["alg"]) == (
        "sig",
        "RSA",
        "RS256",
    )
    assert "d" not in key and "p" not in key  # public numbers only


def test_prepared_key_is_served_before_it_signs(token_home: Home, base_url: str) -> None:
    service = token_home.stores.token_service
    prepared = service.rotate("prepare")
    client = jwt.PyJWKClient(f"{base_url}/openid/v1/jwks", cache_jwk_set=False)
    served = [k.key_id for k in client.get_signing_keys()]
    assert prepared.kid in served and len(served) == 2
    issued = service.issue_user_token("alice", ["dev"])
    assert jwt.get_unverified_header(issued.token)["kid"] != prepared.kid
