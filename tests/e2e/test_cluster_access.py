"""Credentials that work the moment they are handed out: service-account tokens with the
account's UID looked up in the cluster, kubeconfigs issued with their binding, grants.

Twins: a missing account is refused with no token printed; no connection and no --uid is
refused with the way to get the UID; a person issued without a binding, or bound in another
namespace, is Forbidden; granting twice changes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.e2e.cluster import E2ECluster
from tests.e2e.harness import Result, eventually

FORBIDDEN = "(Forbidden)"
POD_READER = "e2e:pod-reader"


def connected_config(cluster: E2ECluster) -> Path:
    """A copy of authsvc.yaml that connects through the setting (cluster.api.kubeconfig), not a flag."""
    settings = cluster.settings()
    settings["cluster"]["api"] = {"kubeconfig": str(cluster.admin_kubeconfig)}
    path = cluster.path("authsvc-connected.yaml")
    path.write_text(yaml.safe_dump(settings))
    return path


@pytest.fixture(scope="module")
def pod_reader(cluster: E2ECluster) -> str:
    """A ClusterRole that lists pods (1.20 without a controller-manager has empty view/edit roles)."""
    cluster.admin("create", "clusterrole", POD_READER, "--verb=get,list", "--resource=pods")
    for namespace in ("e2e-team-a", "e2e-team-b"):
        cluster.admin("create", "namespace", namespace)
    return POD_READER


def eventually_ok(cluster: E2ECluster, kubeconfig: Path, *args: str) -> Result:
    """A fresh binding reaches the authorizer's cache within moments: polled, not slept through."""
    return eventually(lambda: cluster.kubectl(kubeconfig, *args), lambda r: r.ok)


# ---------------------------------------------------------------------------- service-account tokens


def test_sa_token_without_uid_authenticates_as_the_account(cluster: E2ECluster) -> None:
    cluster.admin("create", "serviceaccount", "builder", "-n", "default")
    cluster.bind("e2e:builder-reads-namespaces", serviceaccount="default:builder")
    config = connected_config(cluster)

    token = cluster.authsvc.ok(
        f"--config={config}", "token", "create", "-n", "default", "--serviceaccount", "builder"
    ).strip()

    kubeconfig = cluster.token_kubeconfig("builder", token)
    assert cluster.can_list_namespaces(kubeconfig).ok
    denied = cluster.kubectl(kubeconfig, "get", "secrets", "-n", "default")
    assert 'User "system:serviceaccount:default:builder" cannot list resource "secrets"' in denied.stderr, denied
    uid = cluster.admin("get", "serviceaccount", "builder", "-n", "default", "-o", "jsonpath={.metadata.uid}")
    verified = json.loads(cluster.authsvc.ok("token", "verify", token, "-o", "json"))
    assert verified["uid"] == uid and verified["warnings"] == []


def test_sa_token_for_a_missing_account_is_refused_and_prints_nothing(cluster: E2ECluster) -> None:
    result = cluster.authsvc(
        f"--config={connected_config(cluster)}", "token", "create", "-n", "default", "--serviceaccount", "nobody"
    )

    assert result.code == 1 and result.stdout == "", result.describe()
    assert result.stderr == (
        f"error: service account default/nobody does not exist in the cluster at {cluster.server}: "
        "create it first (kubectl create serviceaccount nobody -n default)\n"
    )


def test_sa_token_with_a_stale_uid_is_refused(cluster: E2ECluster) -> None:
    cluster.admin("create", "serviceaccount", "recreated", "-n", "default")
    result = cluster.authsvc(
        f"--config={connected_config(cluster)}",
        "token", "create", "-n", "default", "--serviceaccount", "recreated",
        "--uid", "00000000-0000-0000-0000-000000000000",
    )  # fmt: skip

    assert result.code == 1 and result.stdout == "", result.describe()
    assert "has UID" in result.stderr and "the API server would refuse the token" in result.stderr


def test_sa_token_without_connection_or_uid_says_how_to_get_the_uid(cluster: E2ECluster) -> None:
    result = cluster.authsvc("token", "create", "-n", "default", "--serviceaccount", "builder")

    assert result.code == 2 and result.stdout == "", result.describe()
    assert "kubectl get serviceaccount builder -n default -o jsonpath={.metadata.uid}" in result.stderr
    assert "--kubeconfig or cluster.api.kubeconfig" in result.stderr


# ---------------------------------------------------------------------------- issue --clusterrole, access grant


def test_issue_with_clusterrole_works_at_once(cluster: E2ECluster, pod_reader: str) -> None:
    pat, quinn = cluster.path("pat.kubeconfig"), cluster.path("quinn.kubeconfig")
    connection = ("--kubeconfig", str(cluster.admin_kubeconfig))

    out = cluster.authsvc.ok("issue", "pat", "-g", "dev", "--clusterrole", pod_reader, "-o", str(pat), *connection)
    cluster.authsvc.ok("issue", "quinn", "-g", "dev", "-o", str(quinn))

    assert f"clusterrolebinding.rbac.authorization.k8s.io/authsvc:user:pat:clusterrole:{pod_reader} created" in out
    listed = eventually_ok(cluster, pat, "get", "pods", "-n", "e2e-team-a")
    assert listed.ok, listed.describe()
    others = cluster.kubectl(pat, "get", "secrets", "-n", "e2e-team-a")
    assert FORBIDDEN in others.stderr and 'User "pat" cannot list resource "secrets"' in others.stderr, others
    unbound = cluster.kubectl(quinn, "get", "pods", "-n", "e2e-team-a")
    assert FORBIDDEN in unbound.stderr and 'User "quinn" cannot list resource "pods"' in unbound.stderr, unbound


def test_issue_with_clusterrole_in_a_namespace_binds_there_only(cluster: E2ECluster, pod_reader: str) -> None:
    dora = cluster.path("dora.kubeconfig")
    args = ("--clusterrole", pod_reader, "-n", "e2e-team-a", "--kubeconfig", str(cluster.admin_kubeconfig))

    cluster.authsvc.ok("issue", "dora", "-o", str(dora), *args)

    assert eventually_ok(cluster, dora, "get", "pods").ok  # the context's namespace is e2e-team-a
    elsewhere = cluster.kubectl(dora, "get", "pods", "-n", "e2e-team-b")
    assert FORBIDDEN in elsewhere.stderr, elsewhere.describe()


def test_issue_dry_run_issues_nothing(cluster: E2ECluster, pod_reader: str) -> None:
    erin = cluster.path("erin.kubeconfig")

    out = cluster.authsvc.ok(
        "issue", "erin", "--clusterrole", pod_reader, "-o", str(erin), "--dry-run",
        "--kubeconfig", str(cluster.admin_kubeconfig),
    )  # fmt: skip

    assert not erin.exists()
    assert "checked by the API server" in out and f"name: authsvc:user:erin:clusterrole:{pod_reader}" in out, out
    missing = cluster.kubectl(
        cluster.admin_kubeconfig, "get", "clusterrolebinding", f"authsvc:user:erin:clusterrole:{pod_reader}"
    )
    assert not missing.ok and "NotFound" in missing.stderr


def resource_version(cluster: E2ECluster, binding: str) -> str:
    return cluster.admin("get", "clusterrolebinding", binding, "-o", "jsonpath={.metadata.resourceVersion}")


def test_access_grant_to_a_group_and_again_changes_nothing(cluster: E2ECluster, pod_reader: str) -> None:
    fred = cluster.path("fred.kubeconfig")
    cluster.authsvc.ok("issue", "fred", "-g", "e2e-readers", "-o", str(fred))
    grant = ("access", "grant", "--group", "e2e-readers", "--clusterrole", pod_reader)
    connection = ("--kubeconfig", str(cluster.admin_kubeconfig))
    binding = f"authsvc:group:e2e-readers:clusterrole:{pod_reader}"

    first = cluster.authsvc.ok(*grant, *connection)
    version = resource_version(cluster, binding)
    second = cluster.authsvc.ok(*grant, *connection)

    assert first.strip().endswith(" created") and second.strip().endswith(" unchanged"), (first, second)
    assert resource_version(cluster, binding) == version
    assert eventually_ok(cluster, fred, "get", "pods", "-n", "e2e-team-b").ok


def test_access_grant_refuses_privileged_groups(cluster: E2ECluster) -> None:
    result = cluster.authsvc(
        "access",
        "grant",
        "--group",
        "system:masters",
        "--clusterrole",
        "view",
        "--kubeconfig",
        str(cluster.admin_kubeconfig),
    )

    assert result.code == 1 and result.stderr.count("\n") == 1 and "system:masters" in result.stderr, result.describe()
    assert "authsvc:group:system:masters" not in cluster.admin("get", "clusterrolebindings", "-o", "name")


def test_access_grant_by_a_user_without_rights_creates_nothing(cluster: E2ECluster, pod_reader: str) -> None:
    gina = cluster.path("gina.kubeconfig")
    cluster.authsvc.ok(
        "issue", "gina", "--clusterrole", pod_reader, "-o", str(gina), "--kubeconfig", str(cluster.admin_kubeconfig)
    )

    result = eventually(
        lambda: cluster.authsvc(
            "access", "grant", "--user", "gina", "--clusterrole", "cluster-admin", "--kubeconfig", str(gina)
        ),
        lambda r: "cannot get" in r.stderr,
    )

    assert result.code == 1 and result.stderr.count("\n") == 1, result.describe()
    assert result.stderr.startswith('error: forbidden: User "gina" cannot get resource "clusterrolebindings"')
    names = cluster.admin("get", "clusterrolebindings", "-o", "name")
    assert "authsvc:user:gina:clusterrole:cluster-admin" not in names
