"""Service-account tokens: authsvc and kube-apiserver sign with the same key (init's pki/sa.key).

- A token from `authsvc token create` is verified by kube-apiserver itself (its service-account
  authenticator, --service-account-key-file = `authsvc keys export-public`): the webhook is never
  asked, which authsvc's audit log shows.
- A token from kube-apiserver's TokenRequest (`kubectl create token`) verifies with authsvc's
  JWKS and `authsvc token verify`, and both sides publish the same key id.
Twins: expired, wrong service-account UID, tampered.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import urllib.request
from typing import Any

import jwt
import pytest

from pki.clock import system_clock
from tests.e2e.cluster import E2ECluster

UNAUTHORIZED = "(Unauthorized)"
NAMESPACE = "e2e-sa"


@pytest.fixture(scope="module")
def service_account(cluster: E2ECluster) -> tuple[str, str]:
    """(name, uid) of a ServiceAccount made with kubectl (1.20 has no controller-manager to make any)."""
    cluster.admin("create", "namespace", NAMESPACE)
    cluster.admin("create", "serviceaccount", "deployer", "-n", NAMESPACE)
    uid = cluster.admin("get", "serviceaccount", "deployer", "-n", NAMESPACE, "-o", "jsonpath={.metadata.uid}")
    cluster.bind("e2e:deployer-reads-namespaces", serviceaccount=f"{NAMESPACE}:deployer")
    return "deployer", uid


def authsvc_sa_token(cluster: E2ECluster, name: str, uid: str, *extra: str, now: str | None = None) -> str:
    out = cluster.authsvc.ok(
        "token", "create", "-n", NAMESPACE, "--serviceaccount", name, "--uid", uid, *extra, now=now
    )
    return out.strip()


def test_authsvc_sa_token_is_accepted_natively(cluster: E2ECluster, service_account: tuple[str, str]) -> None:
    name, uid = service_account
    token = authsvc_sa_token(cluster, name, uid, "--ttl", "10m")
    kubeconfig = cluster.token_kubeconfig("deployer", token)

    listed = cluster.can_list_namespaces(kubeconfig)
    assert listed.ok, listed.describe()
    denied = cluster.kubectl(kubeconfig, "get", "secrets", "-n", NAMESPACE)
    assert not denied.ok, denied.describe()
    assert f'User "system:serviceaccount:{NAMESPACE}:{name}" cannot list resource "secrets"' in denied.stderr
    # kube-apiserver's own service-account authenticator took it: the webhook never saw it.
    assert cluster.webhook_decisions(token) == []


def test_expired_authsvc_sa_token_is_unauthorized(cluster: E2ECluster, service_account: tuple[str, str]) -> None:
    name, uid = service_account
    # Minted two hours ago for ten minutes (the CLI's hidden --now): expired on arrival.
    minted_at = (system_clock() - dt.timedelta(hours=2)).isoformat()
    token = authsvc_sa_token(cluster, name, uid, "--ttl", "10m", now=minted_at)

    result = cluster.kubectl(cluster.token_kubeconfig("deployer-expired", token), "get", "namespaces")

    assert not result.ok and UNAUTHORIZED in result.stderr, result.describe()


def test_sa_token_for_another_uid_is_unauthorized(cluster: E2ECluster, service_account: tuple[str, str]) -> None:
    # kube-apiserver looks the service account up: a deleted-and-recreated account has a new UID.
    name, _ = service_account
    token = authsvc_sa_token(cluster, name, "00000000-0000-0000-0000-000000000000", "--ttl", "10m")

    result = cluster.kubectl(cluster.token_kubeconfig("deployer-old-uid", token), "get", "namespaces")

    assert not result.ok and UNAUTHORIZED in result.stderr, result.describe()


def authsvc_jwks(cluster: E2ECluster) -> dict[str, Any]:
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=cluster.webhook_context)
    )
    with opener.open(f"{cluster.public_url}/openid/v1/jwks", timeout=5) as response:
        jwks: dict[str, Any] = json.load(response)
    return jwks


def tampered(token: str, **claims: Any) -> str:
    """The same header and signature over a changed payload."""
    header, payload, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    changed = base64.urlsafe_b64encode(json.dumps({**decoded, **claims}).encode()).rstrip(b"=").decode()
    return f"{header}.{changed}.{signature}"


def test_apiserver_token_request_verifies_with_authsvc(cluster: E2ECluster, service_account: tuple[str, str]) -> None:
    name, _ = service_account
    token = cluster.admin("create", "token", name, "-n", NAMESPACE, "--duration=10m").strip()

    verified = json.loads(cluster.authsvc.ok("token", "verify", token, "-o", "json"))
    assert verified["valid"] is True
    assert verified["username"] == f"system:serviceaccount:{NAMESPACE}:{name}"

    jwks = authsvc_jwks(cluster)
    kid = jwt.get_unverified_header(token)["kid"]
    [key] = [k for k in jwt.PyJWKSet.from_dict(jwks).keys if k.key_id == kid]
    claims = jwt.decode(token, key.key, algorithms=["RS256"], audience=cluster.issuer, issuer=cluster.issuer)
    assert claims["sub"] == f"system:serviceaccount:{NAMESPACE}:{name}"
    # Both publish the key under the same id (kube-apiserver's own discovery endpoint).
    apiserver_jwks = json.loads(cluster.admin("get", "--raw", "/openid/v1/jwks"))
    assert {k["kid"] for k in apiserver_jwks["keys"]} <= {k["kid"] for k in jwks["keys"]}


def test_tampered_apiserver_token_is_rejected_by_authsvc(cluster: E2ECluster, service_account: tuple[str, str]) -> None:
    name, _ = service_account
    token = cluster.admin("create", "token", name, "-n", NAMESPACE, "--duration=10m").strip()
    forged = tampered(token, sub="system:serviceaccount:kube-system:admin")

    result = cluster.authsvc("token", "verify", forged, "-o", "json")

    assert result.code == 1 and "error:" in result.stderr, result.describe()
    with pytest.raises(jwt.InvalidSignatureError):
        key = jwt.PyJWKSet.from_dict(authsvc_jwks(cluster))[jwt.get_unverified_header(forged)["kid"]]
        jwt.decode(forged, key.key, algorithms=["RS256"], audience=cluster.issuer)
