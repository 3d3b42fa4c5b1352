"""authsvc as an OpenID Connect provider, verified natively by the real kube-apiserver 1.20.

The shared control plane runs with the --oidc-* flags that `authsvc apiserver-config` prints
(tests/e2e/cluster.py): issuer = the user issuer on authsvc's public listener, client id
`kubernetes`, user name from `sub`, groups from `groups`, the cluster CA for the TLS. The relying
party is Authlib's client (tests/oidc/relying_party.py): authorization code + PKCE S256, the
sign-in form, the code exchange, the ID token verified against the provider's JWKS.

The ID token then goes to kube-apiserver as a bearer token: accepted as the user (the Forbidden
message names them) and the group (a group-only binding lets them list namespaces), without the
webhook ever vouching for it. Twins: an ID token for another client id, an expired one (signed
with the real key under an injected clock), and ones from another issuer (the real key under
another `iss`; a foreign key under the right `iss`) are Unauthorized.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from authsvc.home.opened import open_home
from pki.clock import FixedClock
from pki.tokens import TokenService
from pki.tokens.claims import IDTokenRequest
from pki.tokens.kid import kid_for
from tests.e2e.cluster import OIDC_CLIENT, OIDC_GROUP, OIDC_OTHER_CLIENT, OIDC_PASSWORD, OIDC_USER, E2ECluster
from tests.e2e.harness import Result, eventually
from tests.oidc.relying_party import RelyingParty

# kube-apiserver 1.20 fetches discovery 10 s after it starts and retries every 10 s.
OIDC_READY_TIMEOUT = 45.0
REDIRECT = "http://127.0.0.1:49321/callback"  # any port: the client registered the loopback URI
UNAUTHORIZED = "Unauthorized"


def issuer_of(cluster: E2ECluster) -> str:
    return str(cluster.settings()["tokens"]["user_issuer"])


def get_namespaces(cluster: E2ECluster, name: str, token: str) -> Result:
    return cluster.kubectl(cluster.token_kubeconfig(name, token), "get", "namespaces", "-o", "name")


def authenticated_by_webhook(cluster: E2ECluster, token: str) -> bool:
    return any(record.get("decision") == "allow" for record in cluster.webhook_decisions(token))


@pytest.fixture(scope="module")
def signed_in(cluster: E2ECluster) -> dict[str, Any]:
    """Olivia's tokens from the code flow, once kube-apiserver accepts the ID token; her group
    (and only it) may list namespaces."""
    party = RelyingParty(issuer_of(cluster), OIDC_CLIENT, REDIRECT, cluster.ca_file)
    token, claims = party.sign_in(OIDC_USER, OIDC_PASSWORD)
    assert claims["sub"] == OIDC_USER and claims["groups"] == [OIDC_GROUP] and claims["aud"] == OIDC_CLIENT
    cluster.bind("e2e-oidc-group-reader", group=OIDC_GROUP)
    listed = eventually(
        lambda: get_namespaces(cluster, "oidc-olivia", token["id_token"]), lambda r: r.ok, timeout=OIDC_READY_TIMEOUT
    )
    assert listed.ok, listed.describe()
    return token


def test_the_api_server_accepts_the_id_token_as_the_user_and_her_groups(
    cluster: E2ECluster, signed_in: dict[str, Any]
) -> None:
    id_token = signed_in["id_token"]
    listed = get_namespaces(cluster, "oidc-olivia-again", id_token)
    assert listed.ok and "namespace/default" in listed.stdout, listed.describe()
    # Authorised through the group binding alone; the name the API server saw is hers:
    denied = cluster.kubectl(cluster.token_kubeconfig("oidc-olivia-secrets", id_token), "get", "secrets")
    assert not denied.ok and f'User "{OIDC_USER}" cannot list resource "secrets"' in denied.stderr, denied.describe()
    # Verified natively: the webhook never vouched for it (it refuses ID tokens: wrong audience).
    assert not authenticated_by_webhook(cluster, id_token)


def test_the_access_token_is_no_credential_for_the_api_server(cluster: E2ECluster, signed_in: dict[str, Any]) -> None:
    # An opaque token for /userinfo only: neither kube-apiserver nor the webhook takes it.
    refused = get_namespaces(cluster, "oidc-olivia-access", signed_in["access_token"])
    assert not refused.ok and UNAUTHORIZED in refused.stderr, refused.describe()
    assert not authenticated_by_webhook(cluster, signed_in["access_token"])


def test_an_id_token_for_another_client_is_unauthorized(cluster: E2ECluster, signed_in: dict[str, Any]) -> None:
    party = RelyingParty(issuer_of(cluster), OIDC_OTHER_CLIENT, REDIRECT, cluster.ca_file)
    token, claims = party.sign_in(OIDC_USER, OIDC_PASSWORD)
    assert claims["aud"] == OIDC_OTHER_CLIENT
    refused = get_namespaces(cluster, "oidc-other-client", token["id_token"])
    assert not refused.ok and UNAUTHORIZED in refused.stderr, refused.describe()


def _id_token(cluster: E2ECluster, *, now: dt.datetime, issuer: str | None = None) -> str:
    """An ID token for olivia and the API server's client, signed by authsvc's real key at `now`,
    under `issuer` (default: the provider's)."""
    home = open_home(cluster.home, clock=FixedClock(now), environ={})
    service = home.stores.token_service
    if issuer is not None:
        config = dataclasses.replace(service.config, user_issuer=issuer)
        service = TokenService(service.store, service.files, config, home.clock)
    request = IDTokenRequest(client_id=OIDC_CLIENT, auth_time=now)
    issued = service.issue_id_token(OIDC_USER, [OIDC_GROUP], request, ttl=dt.timedelta(minutes=15), source="users")
    service.flush()
    home.stores.close()
    return issued.token


def test_a_freshly_minted_id_token_is_accepted(cluster: E2ECluster, signed_in: dict[str, Any]) -> None:
    # The twin of the three below: the same construction, valid, goes through.
    token = _id_token(cluster, now=dt.datetime.now(dt.UTC))
    listed = get_namespaces(cluster, "oidc-minted", token)
    assert listed.ok, listed.describe()


def test_an_expired_id_token_is_unauthorized(cluster: E2ECluster, signed_in: dict[str, Any]) -> None:
    token = _id_token(cluster, now=dt.datetime.now(dt.UTC) - dt.timedelta(hours=2))
    refused = get_namespaces(cluster, "oidc-expired", token)
    assert not refused.ok and UNAUTHORIZED in refused.stderr, refused.describe()


def test_an_id_token_under_another_issuer_is_unauthorized(cluster: E2ECluster, signed_in: dict[str, Any]) -> None:
    other = issuer_of(cluster).rsplit("/", 1)[0] + "/elsewhere"
    token = _id_token(cluster, now=dt.datetime.now(dt.UTC), issuer=other)
    assert jwt.decode(token, options={"verify_signature": False})["iss"] == other
    refused = get_namespaces(cluster, "oidc-other-issuer", token)
    assert not refused.ok and UNAUTHORIZED in refused.stderr, refused.describe()


def test_an_id_token_signed_by_another_key_is_unauthorized(
    cluster: E2ECluster, signed_in: dict[str, Any], tmp_path: Path
) -> None:
    good = jwt.decode(signed_in["id_token"], options={"verify_signature": False})
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(good, key, algorithm="RS256", headers={"kid": kid_for(key.public_key())})
    refused = get_namespaces(cluster, "oidc-foreign-key", forged)
    assert not refused.ok and UNAUTHORIZED in refused.stderr, refused.describe()
