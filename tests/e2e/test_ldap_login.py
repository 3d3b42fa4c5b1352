"""Directory login: an exec-mode kubeconfig, kubectl runs `authsvc login` against /login (LDAP).

The directory is a real slapd (tests/components/slapd.py, default dataset: carol, password
carol-pw, in group ops). kubectl starts `authsvc login` as its exec credential plugin with the
credentials in AUTHSVC_USERNAME / AUTHSVC_PASSWORD (automation's way); the token /login hands
out is then checked by kube-apiserver through the webhook, which re-checks carol in LDAP, and
RBAC grants by her directory group.

/login is served by the shared `authsvc serve`'s public listener (no client certificates: people
have none); its webhook listener keeps requiring the API server's certificate. `server.public_url`
stays as it is: it is also the OIDC issuer's, whose discovery kube-apiserver reads once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.components.slapd import CAROL
from tests.e2e.cluster import E2ECluster
from tests.e2e.directory import directory_logins
from tests.e2e.harness import eventually

LDAP_GROUP = "ops"  # carol's directory group (direct member)


@pytest.fixture(scope="module")
def login_url(cluster: E2ECluster) -> Iterator[str]:
    """slapd and authsvc configured for LDAP login on the public listener; everything undone after."""
    with directory_logins(cluster):
        # Exec-mode kubeconfigs send people to <server.public_url>/login.
        yield f"{cluster.public_url}/login"


def exec_kubeconfig(cluster: E2ECluster, user: str, name: str) -> Path:
    out = cluster.path(f"{name}.kubeconfig")
    cluster.authsvc.ok("issue", user, "--mode", "exec", "-o", str(out))
    return out


def login_env(cluster: E2ECluster, name: str, user: str, password: str) -> dict[str, str]:
    """Credentials for `authsvc login`, and a token cache of this case's own."""
    cache = cluster.path(f"login-cache-{name}")
    cache.mkdir(mode=0o700)
    return {"AUTHSVC_USERNAME": user, "AUTHSVC_PASSWORD": password, "XDG_CACHE_HOME": str(cache)}


def test_exec_kubeconfig_logs_in_through_ldap_and_is_group_bound(cluster: E2ECluster, login_url: str) -> None:
    kubeconfig = exec_kubeconfig(cluster, CAROL.uid, "carol-exec")
    plugin_args = cluster.kubectl(kubeconfig, "config", "view", "-o", "jsonpath={.users[0].user.exec.args}").stdout
    assert login_url in plugin_args
    env = login_env(cluster, "carol", CAROL.uid, CAROL.password)
    cluster.bind("e2e:ldap-ops-reads-namespaces", group=LDAP_GROUP)

    listed = eventually(lambda: cluster.kubectl(kubeconfig, "get", "namespaces", "-o", "name", env=env), lambda r: r.ok)

    assert listed.ok, listed.describe()
    denied = cluster.kubectl(kubeconfig, "get", "secrets", "-A", env=env)
    assert not denied.ok and f'User "{CAROL.uid}" cannot list resource "secrets"' in denied.stderr, denied.describe()
    # Audit lines are written in batches (audit.flush_ms): wait for the one of this review.
    allowed = eventually(
        cluster.audit_records,
        lambda records: any(d["subject"] == CAROL.uid and d["outcome"] == "allow" for d in records),
    )
    assert any(d["subject"] == CAROL.uid and d["outcome"] == "allow" for d in allowed)


def test_exec_kubeconfig_with_wrong_password_gets_no_credential(cluster: E2ECluster, login_url: str) -> None:
    kubeconfig = exec_kubeconfig(cluster, CAROL.uid, "carol-exec-wrong-password")
    env = login_env(cluster, "carol-wrong", CAROL.uid, "not-" + CAROL.password)

    result = cluster.kubectl(kubeconfig, "get", "namespaces", env=env)

    assert not result.ok, result.describe()
    # The plugin failed: kubectl never had a token to send.
    assert "getting credentials" in result.stderr and "authsvc" in result.stderr, result.describe()
