"""`tokens.user_issuer` end to end: what a kube-apiserver JWT authenticator does with the
AuthenticationConfiguration `authsvc apiserver-config` writes, against `authsvc serve`.

The real server (granian, the public listener over TLS) serves discovery for the user issuer;
the test reads issuer url, discoveryURL, certificateAuthority, audiences and claim mappings from
the written file, fetches discovery and then `jwks_uri` over TLS trusting only that CA, checks
that discovery names the issuer exactly (as kube-apiserver does), and verifies a token from
`authsvc token create-user` with PyJWT: issuer, audience, kid. Tokens the configuration must
refuse: a service-account token, and a user token signed before tokens.user_issuer was set.
"""

from __future__ import annotations

import json
import shutil
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml

from tests.components.support import free_port
from tests.conftest import run_cli
from tests.serve.support import authsvc_serve

SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
# Not the listener's address: kube-apiserver finds discovery through discoveryURL, as it would
# for an issuer name that is not reachable from the control plane.
USER_ISSUER = "https://authsvc.example/users"
DISCOVERY_SUFFIX = "/.well-known/openid-configuration"


@dataclass
class Served:
    home: Path
    public_url: str
    webhook_url: str
    # A user token signed before tokens.user_issuer was set.
    earlier_user_token: str

    def cli(self, *args: str) -> str:
        result = run_cli(list(args), home=self.home)
        assert result.exit_code == 0, result.stderr
        return result.stdout


@pytest.fixture(scope="module")
def served(home_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("user-issuer") / "home"
    shutil.copytree(home_template, home)
    earlier = run_cli(["token", "create-user", "alice", "-g", "dev"], home=home)
    assert earlier.exit_code == 0, earlier.stderr
    webhook, public = free_port(), free_port()
    config = home / "authsvc.yaml"
    settings = yaml.safe_load(config.read_text())
    settings["tokens"]["user_issuer"] = USER_ISSUER
    settings["server"]["public_url"] = f"https://127.0.0.1:{public}"
    config.write_text(yaml.safe_dump(settings))
    with authsvc_serve(home, home / "serve.log", webhook=webhook, public=public):
        yield Served(home, f"https://127.0.0.1:{public}", f"https://127.0.0.1:{webhook}", earlier.stdout.strip())


# ---- kube-apiserver's JWT authenticator, as far as this test needs it ------------------------


@dataclass
class JWTAuthenticator:
    """One `jwt:` entry of an AuthenticationConfiguration, with its keys fetched as kube-apiserver does."""

    entry: dict[str, Any]
    keys: jwt.PyJWKSet
    algorithms: list[str]

    @classmethod
    def from_configuration(cls, path: Path) -> JWTAuthenticator:
        document = yaml.safe_load(path.read_text())
        assert document["kind"] == "AuthenticationConfiguration"
        (entry,) = document["jwt"]
        issuer = entry["issuer"]
        # Only the configured CA: the system trust store does not know the cluster CA.
        tls = ssl.create_default_context(cadata=issuer["certificateAuthority"])
        discovery = fetch_json(issuer.get("discoveryURL") or issuer["url"].rstrip("/") + DISCOVERY_SUFFIX, tls)
        if discovery["issuer"] != issuer["url"]:  # go-oidc: "issuer did not match the issuer returned by provider"
            raise AssertionError(f"discovery names {discovery['issuer']}, the configuration {issuer['url']}")
        keys = jwt.PyJWKSet.from_dict(fetch_json(discovery["jwks_uri"], tls))
        return cls(entry, keys, discovery["id_token_signing_alg_values_supported"])

    def authenticate(self, token: str) -> tuple[str, list[str]]:
        """(user name, groups) through the claim mappings; jwt.PyJWTError when the token is refused."""
        kid = jwt.get_unverified_header(token).get("kid")
        key = next((k for k in self.keys.keys if k.key_id == kid), None)
        if key is None:
            raise jwt.InvalidKeyError(f"no key {kid} in the issuer's JWKS")
        issuer = self.entry["issuer"]
        claims = jwt.decode(
            token,
            key,
            algorithms=self.algorithms,
            issuer=issuer["url"],
            audience=issuer["audiences"],
            options={"require": ["iss", "aud", "exp", "sub"]},
        )
        mappings = self.entry["claimMappings"]
        # kube-apiserver: a username or uid claim mapping requires its claim ("oidc: parse uid claim
        # ...: claim not present"); a missing groups claim is no groups. CEL is not evaluated here.
        for name in ("username", "uid"):
            claim = mappings.get(name, {}).get("claim")
            if claim is not None and claim not in claims:
                raise jwt.MissingRequiredClaimError(claim)
        username = mappings["username"]["prefix"] + claims[mappings["username"]["claim"]]
        groups = [mappings["groups"]["prefix"] + g for g in claims.get(mappings["groups"]["claim"], [])]
        return username, groups


def fetch_json(url: str, tls: ssl.SSLContext) -> dict[str, Any]:
    with urllib.request.urlopen(url, context=tls, timeout=10) as response:
        assert response.status == 200
        document: dict[str, Any] = json.loads(response.read())
        return document


@pytest.fixture(scope="module")
def authenticator(served: Served, tmp_path_factory: pytest.TempPathFactory) -> JWTAuthenticator:
    out = tmp_path_factory.mktemp("apiserver") / "authentication-config.yaml"
    served.cli("apiserver-config", "-o", str(out))
    return JWTAuthenticator.from_configuration(out)


# ---- the tests ------------------------------------------------------------------------------


def test_the_configuration_names_the_user_issuer_and_its_discovery(
    served: Served, authenticator: JWTAuthenticator
) -> None:
    issuer = authenticator.entry["issuer"]
    assert issuer["url"] == USER_ISSUER and issuer["audiences"] == ["authsvc"]
    assert issuer["discoveryURL"] == f"{served.public_url}/users{DISCOVERY_SUFFIX}"


def test_a_user_token_verifies_as_kube_apiserver_would(served: Served, authenticator: JWTAuthenticator) -> None:
    token = served.cli("token", "create-user", "bob", "-g", "dev", "-g", "ops").strip()
    assert jwt.decode(token, options={"verify_signature": False})["iss"] == USER_ISSUER
    assert authenticator.authenticate(token) == ("bob", ["dev", "ops"])


def test_a_service_account_token_is_refused(served: Served, authenticator: JWTAuthenticator) -> None:
    token = served.cli(
        "token", "create", "-n", "ci", "--serviceaccount", "deployer", "--uid", "u-1", "--audience", "authsvc"
    ).strip()
    with pytest.raises(jwt.InvalidIssuerError):
        authenticator.authenticate(token)


def test_a_user_token_from_before_the_user_issuer_is_refused(served: Served, authenticator: JWTAuthenticator) -> None:
    with pytest.raises(jwt.InvalidIssuerError):
        authenticator.authenticate(served.earlier_user_token)


def test_the_webhook_agrees(served: Served) -> None:
    """The webhook listener (mTLS) takes user tokens under the user issuer only."""
    pki = served.home / "pki"
    tls = ssl.create_default_context(cafile=pki / "ca.crt")
    tls.load_cert_chain(pki / "authsvc/apiserver-webhook-client.crt", pki / "authsvc/apiserver-webhook-client.key")

    def authenticated(token: str) -> bool:
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
        request = urllib.request.Request(
            f"{served.webhook_url}/authenticate", json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, context=tls, timeout=10) as response:
            return bool(json.loads(response.read())["status"]["authenticated"])

    assert authenticated(served.cli("token", "create-user", "carol").strip())
    assert not authenticated(served.earlier_user_token)


def test_service_account_discovery_is_unchanged(served: Served) -> None:
    tls = ssl.create_default_context(cafile=served.home / "pki/ca.crt")
    discovery = fetch_json(f"{served.public_url}{DISCOVERY_SUFFIX}", tls)
    assert discovery["issuer"] == SA_ISSUER and discovery["jwks_uri"] == f"{served.public_url}/openid/v1/jwks"
    users = fetch_json(f"{served.public_url}/users{DISCOVERY_SUFFIX}", tls)
    assert users == {**discovery, "issuer": USER_ISSUER}
    with pytest.raises(urllib.error.HTTPError, match="404"):
        fetch_json(f"{served.public_url}/other{DISCOVERY_SUFFIX}", tls)


# Hostile requests to the public listener around the user issuer's discovery: path tricks must
# not reach another document, the webhook's endpoint is not there, and nothing answers 5xx.
HOSTILE_PATHS = [
    "/users/../.well-known/openid-configuration",
    "/users/%2e%2e/.well-known/openid-configuration",
    "//users/.well-known/openid-configuration",
    "/users%2F.well-known%2Fopenid-configuration",
    "/users/.well-known/openid-configuration/..",
    "/users/.well-known/openid-configuration%00",
    "/users/x/.well-known/openid-configuration",
    "/USERS/.well-known/openid-configuration",
    "/users/.well-known/openid-configuration?issuer=https://attacker.example",
    "/" + "a/" * 2000 + ".well-known/openid-configuration",
    "/authenticate",
]


@pytest.mark.parametrize("path", HOSTILE_PATHS, ids=range(len(HOSTILE_PATHS)))
def test_hostile_paths_on_the_public_listener(served: Served, path: str) -> None:
    tls = ssl.create_default_context(cafile=served.home / "pki/ca.crt")
    request = urllib.request.Request(served.public_url + path, method="GET")
    try:
        with urllib.request.urlopen(request, context=tls, timeout=10) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    assert status < 500, (status, body[:200])
    if status == 200:  # a path the client normalised to the real one: the real document, unchanged
        assert json.loads(body)["issuer"] == USER_ISSUER
    assert b"attacker" not in body and b"TokenReview" not in body
