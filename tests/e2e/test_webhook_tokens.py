"""Bearer tokens that only authsvc knows, checked by kube-apiserver through the TokenReview webhook.

Each test proves the token went through the webhook (authsvc's audit log has the decision,
found by the token's fingerprint), that the API server took the identity authsvc answered
(RBAC grants by that user or group; a denial names the user), and has a twin that fails.
kube-apiserver runs with --authentication-token-webhook-cache-ttl=0s and authsvc without a
result cache. That does not make a revocation visible on the very next request: kube-apiserver
(v1.20 as today) also caches *successful* token authentications of its whole token
authenticator union for 10 s (TokenSuccessCacheTTL, no flag), failures not at all. So a
revoked or deleted token is refused within 10 s + tokens.cache_refresh; the tests poll for it.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.cluster import STATIC_GROUP, STATIC_TOKEN, STATIC_USER, E2ECluster
from tests.e2e.harness import Result, eventually

UNAUTHORIZED = "(Unauthorized)"
# kube-apiserver's success cache (10 s) + tokens.cache_refresh (1 s) + margin.
REFUSAL_TIMEOUT = 20.0


def assert_denied_as(cluster: E2ECluster, kubeconfig_name: str, token: str, user: str) -> None:
    """The API server knows the token's user: a request RBAC refuses names it."""
    result = cluster.kubectl(cluster.token_kubeconfig(kubeconfig_name, token), "get", "secrets", "-A")
    assert not result.ok and f'User "{user}" cannot list resource "secrets"' in result.stderr, result.describe()


def assert_allowed_by_webhook(cluster: E2ECluster, token: str, user: str, backend: str) -> None:
    decisions = cluster.webhook_decisions(token)
    assert any(d["outcome"] == "allow" and d["subject"] == user and d["backend"] == backend for d in decisions), (
        decisions
    )


def test_static_token_is_authenticated_by_the_webhook(cluster: E2ECluster) -> None:
    kubeconfig = cluster.token_kubeconfig("static", STATIC_TOKEN)
    cluster.bind("e2e:static-team-reads-namespaces", group=STATIC_GROUP)

    listed = cluster.can_list_namespaces(kubeconfig)

    assert listed.ok, listed.describe()
    assert_denied_as(cluster, "static-secrets", STATIC_TOKEN, STATIC_USER)
    assert_allowed_by_webhook(cluster, STATIC_TOKEN, STATIC_USER, "tokenfile")


def test_wrong_static_token_is_unauthorized(cluster: E2ECluster) -> None:
    wrong = STATIC_TOKEN[:-1] + ("0" if STATIC_TOKEN[-1] != "0" else "1")

    result = cluster.kubectl(cluster.token_kubeconfig("wrong-static", wrong), "get", "namespaces")

    assert not result.ok and UNAUTHORIZED in result.stderr, result.describe()
    # Asked and refused (kubectl may ask more than once: discovery, then the request).
    assert {d["outcome"] for d in cluster.webhook_decisions(wrong)} == {"deny"}


def create_bootstrap_token(cluster: E2ECluster) -> tuple[str, str]:
    """(token, user) of a fresh bootstrap token."""
    created = json.loads(cluster.authsvc.ok("token", "bootstrap", "create", "--ttl", "1h", "-o", "json"))
    return created["token"], created["user"]


def test_bootstrap_token_is_authenticated_by_the_webhook(cluster: E2ECluster) -> None:
    token, user = create_bootstrap_token(cluster)
    assert user == f"system:bootstrap:{token.split('.')[0]}"
    cluster.bind("e2e:bootstrap-reads-namespaces", user=user)

    listed = cluster.can_list_namespaces(cluster.token_kubeconfig("bootstrap", token))

    assert listed.ok, listed.describe()
    assert_denied_as(cluster, "bootstrap-secrets", token, user)
    assert_allowed_by_webhook(cluster, token, user, "bootstrap")


def test_bootstrap_token_with_wrong_secret_or_deleted_is_unauthorized(cluster: E2ECluster) -> None:
    token, user = create_bootstrap_token(cluster)
    token_id, secret = token.split(".")
    cluster.bind("e2e:deleted-bootstrap-reads-namespaces", user=user)
    kubeconfig = cluster.token_kubeconfig("bootstrap-to-delete", token)
    assert cluster.can_list_namespaces(kubeconfig).ok

    wrong_secret = f"{token_id}.{secret[::-1]}"
    wrong = cluster.kubectl(cluster.token_kubeconfig("bootstrap-wrong", wrong_secret), "get", "namespaces")
    assert not wrong.ok and UNAUTHORIZED in wrong.stderr, wrong.describe()

    cluster.authsvc.ok("token", "bootstrap", "delete", token_id)
    deleted = refused_eventually(cluster, kubeconfig)
    assert not deleted.ok and UNAUTHORIZED in deleted.stderr, deleted.describe()
    assert cluster.webhook_decisions(token)[-1]["outcome"] == "deny"


def test_user_token_kubeconfig_works_until_revoked(cluster: E2ECluster) -> None:
    kubeconfig = cluster.path("dave.kubeconfig")
    cluster.authsvc.ok("issue", "dave", "-g", "token-team", "--mode", "token", "-o", str(kubeconfig))
    token = cluster.kubectl(kubeconfig, "config", "view", "--raw", "-o", "jsonpath={.users[0].user.token}").stdout
    claims = json.loads(cluster.authsvc.ok("token", "verify", token, "-o", "json"))
    cluster.bind("e2e:token-team-reads-namespaces", group="token-team")

    listed = cluster.can_list_namespaces(kubeconfig)
    assert listed.ok, listed.describe()
    assert_denied_as(cluster, "dave-secrets", token, "dave")
    assert_allowed_by_webhook(cluster, token, "dave", "authsvc")

    cluster.authsvc.ok("token", "revoke", claims_jti(claims), "--reason", "e2e")

    revoked = refused_eventually(cluster, kubeconfig)
    assert not revoked.ok and UNAUTHORIZED in revoked.stderr, revoked.describe()
    assert cluster.webhook_decisions(token)[-1]["outcome"] == "deny"


def refused_eventually(cluster: E2ECluster, kubeconfig: Path) -> Result:
    """`get namespaces` until it fails: polled (see the module's note on caches), never slept through."""
    return eventually(
        lambda: cluster.kubectl(kubeconfig, "get", "namespaces"), lambda r: not r.ok, timeout=REFUSAL_TIMEOUT
    )


def claims_jti(verified: dict[str, object]) -> str:
    """The token id in `authsvc token verify -o json` output."""
    claims = verified.get("claims", verified)
    assert isinstance(claims, dict) and isinstance(claims.get("jti"), str), verified
    return str(claims["jti"])
