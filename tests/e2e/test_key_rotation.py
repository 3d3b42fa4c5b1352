"""Service-account signing key rotation (`authsvc keys rotate`) against the real API server.

The operator's runbook, phase by phase, with kube-apiserver restarted exactly where it has to
be (its --service-account-key-file bundle and --service-account-signing-key-file are read at
start):

    prepare   new key published   → export-public, restart: the apiserver now trusts it
    activate  authsvc signs with it (pki/sa.key) → its tokens work at once, no restart needed;
              restart so the apiserver's TokenRequest signs with it too
    retire    old key dropped     → export-public, restart: old tokens are refused

At every phase, every token minted so far that should work does (authsvc's and the
apiserver's own), and after retire those signed with the old key fail: the twin.

The same rotation together with the CA rollover (`authsvc ca rotate`) runs in test_rotation.py,
on a control plane of its own (it replaces the cluster CA); this one is on the session's cluster,
with the webhook in the chain and the apiserver's own TokenRequest tokens.
"""

from __future__ import annotations

import datetime as dt
import json

import jwt

from pki.clock import system_clock
from tests.e2e.cluster import E2ECluster

NAMESPACE = "e2e-rotation"
ACCOUNT = "rotator"
UNAUTHORIZED = "(Unauthorized)"


def whoami_ok(cluster: E2ECluster, name: str, token: str) -> bool:
    """Authenticated as the service account? (Its binding lets it list namespaces.)"""
    result = cluster.kubectl(cluster.token_kubeconfig(name, token), "get", "namespaces", "-o", "name")
    if not result.ok:
        assert UNAUTHORIZED in result.stderr, result.describe()
    return result.ok


def kid_of(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def active_kid(cluster: E2ECluster) -> str:
    keys = json.loads(cluster.authsvc.ok("keys", "list", "-o", "json"))
    [active] = [k["kid"] for k in keys if k["state"] == "active"]
    return str(active)


def republish_and_restart(cluster: E2ECluster) -> None:
    """What the operator does after a phase that changes the published keys."""
    cluster.authsvc.ok("keys", "export-public", "-o", str(cluster.sa_key_bundle))
    cluster.control_plane.restart_apiserver()


def test_sa_tokens_keep_working_across_key_rotation(cluster: E2ECluster) -> None:
    cluster.admin("create", "namespace", NAMESPACE)
    cluster.admin("create", "serviceaccount", ACCOUNT, "-n", NAMESPACE)
    uid = cluster.admin("get", "serviceaccount", ACCOUNT, "-n", NAMESPACE, "-o", "jsonpath={.metadata.uid}")
    cluster.bind("e2e:rotator-reads-namespaces", serviceaccount=f"{NAMESPACE}:{ACCOUNT}")

    def authsvc_token() -> str:
        return cluster.authsvc.ok(
            "token", "create", "-n", NAMESPACE, "--serviceaccount", ACCOUNT, "--uid", uid, "--ttl", "30m"
        ).strip()

    def apiserver_token() -> str:
        return cluster.admin("create", "token", ACCOUNT, "-n", NAMESPACE, "--duration=30m").strip()

    old_kid = active_kid(cluster)
    tokens = {"authsvc-old": authsvc_token(), "apiserver-old": apiserver_token()}
    assert {kid_of(t) for t in tokens.values()} == {old_kid}

    def assert_all_work(phase: str) -> None:
        refused = [name for name, token in tokens.items() if not whoami_ok(cluster, f"{phase}-{name}", token)]
        assert refused == [], f"after {phase}: refused {refused}"

    assert_all_work("start")

    cluster.authsvc.ok("keys", "rotate", "--phase", "prepare")
    republish_and_restart(cluster)
    tokens["authsvc-prepared"] = authsvc_token()  # still the old key: prepare does not sign
    assert kid_of(tokens["authsvc-prepared"]) == old_kid
    assert_all_work("prepare")

    # --force: the test does not wait out tokens.publish_before_activate (1 h); the apiserver
    # has had the new key since the restart above, which is what that wait is for.
    cluster.authsvc.ok("keys", "rotate", "--phase", "activate", "--force")
    new_kid = active_kid(cluster)
    assert new_kid != old_kid
    tokens["authsvc-new"] = authsvc_token()
    assert kid_of(tokens["authsvc-new"]) == new_kid
    assert_all_work("activate")  # the new key was published in advance: no restart needed
    cluster.control_plane.restart_apiserver()  # its TokenRequest signs with the new sa.key now
    tokens["apiserver-new"] = apiserver_token()
    assert kid_of(tokens["apiserver-new"]) == new_kid
    verified = json.loads(cluster.authsvc.ok("token", "verify", tokens["apiserver-new"], "-o", "json"))
    assert verified["valid"] is True and verified["kid"] == new_kid
    assert_all_work("activate-restarted")

    # Retire once every token the old key signed has expired: authsvc's tokens last at most
    # tokens.max_ttl (1 day), so the CLI's clock is moved past that instead of waiting.
    later = (system_clock() + dt.timedelta(days=1, hours=1)).isoformat()
    cluster.authsvc.ok("keys", "rotate", "--phase", "retire", now=later)
    republish_and_restart(cluster)

    old = {name: token for name, token in tokens.items() if kid_of(token) == old_kid}
    new = {name: token for name, token in tokens.items() if kid_of(token) == new_kid}
    assert sorted(old) == ["apiserver-old", "authsvc-old", "authsvc-prepared"]
    assert [name for name, token in new.items() if not whoami_ok(cluster, f"retired-{name}", token)] == []
    assert [name for name, token in old.items() if whoami_ok(cluster, f"retired-{name}", token)] == []
