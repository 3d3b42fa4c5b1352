"""`authsvc rbac suggest` on kube-apiserver's own audit log (config/apiserver/audit-policy.yaml).

A subject bound to cluster-admin does four things (list pods in ns1, get one configmap by name,
create a secret in ns2, list nodes). The suggestion from the log then replaces cluster-admin:
the same commands succeed, and everything else is Forbidden: deleting a pod or listing secrets
in ns1, the other configmap of ns1, anything in ns3. Once for a user with an authsvc-issued
certificate (suggestion applied with `kubectl apply`), once for a service account with an
authsvc-signed token (applied by `--apply`, after a `--dry-run` that changes nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from authsvc.rbac.reader import AuditLogReader
from authsvc.rbac.subjects import Subject
from tests.e2e.cluster import E2ECluster
from tests.e2e.harness import Result, eventually
from tests.rbac.support import event, line

NS1, NS2, NS3 = "rbac-ns1", "rbac-ns2", "rbac-ns3"
# kubectl words it "Error from server (Forbidden): ..." or "failed to create ...: ... is forbidden: ..."
FORBIDDEN = "is forbidden: User"


def recorded(secret: str) -> list[tuple[str, ...]]:
    """What the subject does while it is cluster-admin (and must still do afterwards)."""
    return [
        ("get", "pods", "-n", NS1),
        ("get", "configmap", "c1", "-n", NS1),
        ("create", "secret", "generic", secret, "-n", NS2, "--from-literal=k=v"),
        ("get", "nodes"),
    ]


# What the subject never did, so the suggestion must not allow it.
NOT_RECORDED: list[tuple[str, ...]] = [
    ("delete", "pod", "some-pod", "-n", NS1),
    ("get", "secrets", "-n", NS1),
    ("get", "configmap", "c2", "-n", NS1),
    ("get", "secrets", "-n", NS2),
    ("get", "pods", "-n", NS3),
    ("get", "configmap", "c3", "-n", NS3),
    ("get", "namespaces"),
]


@pytest.fixture(scope="module")
def namespaces(cluster: E2ECluster) -> None:
    for namespace in (NS1, NS2, NS3):
        cluster.admin("create", "namespace", namespace)
    for name, namespace in (("c1", NS1), ("c2", NS1), ("c3", NS3)):
        cluster.admin("create", "configmap", name, "-n", namespace, "--from-literal=k=v")


def run_all(cluster: E2ECluster, kubeconfig: Path, commands: Sequence[tuple[str, ...]]) -> list[Result]:
    return [cluster.kubectl(kubeconfig, *command) for command in commands]


def assert_all_ok(results: Sequence[Result]) -> None:
    for result in results:
        assert result.ok, result.describe()


def assert_all_forbidden(results: Sequence[Result]) -> None:
    for result in results:
        # Forbidden, not NotFound: the authorizer said no before the object was looked up.
        assert not result.ok and FORBIDDEN in result.stderr, result.describe()


def suggestion_once_logged(cluster: E2ECluster, *subject: str, extra: Sequence[str] = ()) -> Result:
    """`rbac suggest` on the apiserver's log, retried until the subject's last request (list nodes,
    the only one that needs a ClusterRole) has been written: the API server logs ResponseComplete
    after answering."""
    args = ("rbac", "suggest", "--audit-log", str(cluster.apiserver_audit_log), *subject, *extra)
    return eventually(lambda: cluster.authsvc(*args), lambda r: r.ok and "clusterrole" in r.stdout.lower())


def wait_forbidden(cluster: E2ECluster, kubeconfig: Path) -> None:
    """Until cluster-admin's removal reaches the authorizer (listing secrets in ns1 is then refused)."""
    result = eventually(
        lambda: cluster.kubectl(kubeconfig, "get", "secrets", "-n", NS1), lambda r: FORBIDDEN in r.stderr
    )
    assert FORBIDDEN in result.stderr, result.describe()


def test_user_suggestion_replaces_cluster_admin(cluster: E2ECluster, namespaces: None) -> None:
    kubeconfig = cluster.path("rbac-alice.kubeconfig")
    cluster.authsvc.ok("issue", "rbac-alice", "-g", "rbac-team", "-o", str(kubeconfig))
    cluster.bind("e2e:rbac-alice-admin", role="cluster-admin", user="rbac-alice")
    eventually(lambda: cluster.kubectl(kubeconfig, "get", "pods", "-n", NS1), lambda r: r.ok)
    assert_all_ok(run_all(cluster, kubeconfig, recorded("s-recorded")))

    suggested = suggestion_once_logged(cluster, "--user", "rbac-alice")
    assert_fast_path_holds(cluster.apiserver_audit_log, Subject.user("rbac-alice"))
    manifest = cluster.path("rbac-alice-suggested.yaml")
    manifest.write_text(suggested.stdout)
    assert f"namespace: {NS3}" not in suggested.stdout

    cluster.admin("delete", "clusterrolebinding", "e2e:rbac-alice-admin")
    wait_forbidden(cluster, kubeconfig)
    # The twin: without the suggestion, what the user did is refused.
    assert_all_forbidden(run_all(cluster, kubeconfig, recorded("s-unbound")))

    cluster.admin("apply", "-f", str(manifest))
    eventually(lambda: cluster.kubectl(kubeconfig, "get", "pods", "-n", NS1), lambda r: r.ok)
    assert_all_ok(run_all(cluster, kubeconfig, recorded("s-after")))
    assert_all_forbidden(run_all(cluster, kubeconfig, NOT_RECORDED))


def test_service_account_suggestion_applied_by_authsvc(cluster: E2ECluster, namespaces: None) -> None:
    cluster.admin("create", "serviceaccount", "rbac-bot", "-n", NS1)
    uid = cluster.admin("get", "serviceaccount", "rbac-bot", "-n", NS1, "-o", "jsonpath={.metadata.uid}")
    token = cluster.authsvc.ok("token", "create", "-n", NS1, "--serviceaccount", "rbac-bot", "--uid", uid).strip()
    kubeconfig = cluster.token_kubeconfig("rbac-bot", token)
    cluster.bind("e2e:rbac-bot-admin", role="cluster-admin", serviceaccount=f"{NS1}:rbac-bot")
    eventually(lambda: cluster.kubectl(kubeconfig, "get", "pods", "-n", NS1), lambda r: r.ok)
    assert_all_ok(run_all(cluster, kubeconfig, recorded("bot-recorded")))
    subject = ("--serviceaccount", f"{NS1}:rbac-bot")
    admin = ("--kubeconfig", str(cluster.admin_kubeconfig))
    name = f"authsvc:suggested:serviceaccount:{NS1}:rbac-bot"

    dry = suggestion_once_logged(cluster, *subject, extra=("--dry-run", *admin))
    assert f"role.rbac.authorization.k8s.io/{name} -n {NS1} created (dry run)" in dry.stdout, dry.describe()
    # A dry run stores nothing.
    absent = cluster.kubectl(cluster.admin_kubeconfig, "get", "role", name, "-n", NS1)
    assert not absent.ok and "NotFound" in absent.stderr, absent.describe()

    applied = cluster.authsvc(
        *("rbac", "suggest", "--audit-log", str(cluster.apiserver_audit_log)), *subject, "--apply", *admin
    )
    assert applied.ok and f"clusterrolebinding.rbac.authorization.k8s.io/{name} created" in applied.stdout, (
        applied.describe()
    )
    labels = cluster.admin("get", "role", name, "-n", NS2, "-o", "jsonpath={.metadata.labels}")
    assert '"app.kubernetes.io/managed-by":"authsvc"' in labels

    cluster.admin("delete", "clusterrolebinding", "e2e:rbac-bot-admin")
    wait_forbidden(cluster, kubeconfig)
    assert_all_ok(run_all(cluster, kubeconfig, recorded("bot-after")))
    assert_all_forbidden(run_all(cluster, kubeconfig, NOT_RECORDED))


def assert_fast_path_holds(log: Path, subject: Subject) -> None:
    """kube-apiserver writes lines the way the reader's fast path expects: it parses only the lines
    that hold the subject's name (had the format differed, it would parse every line)."""
    needle = subject.needle()
    assert needle is not None
    reader = AuditLogReader(needle)
    events = list(reader.events(str(log)))
    lines = log.read_bytes().splitlines()
    assert reader.report.problem_count == 0 and len(lines) > len(events) > 0
    assert reader.report.parsed == sum(needle in raw for raw in lines[: reader.report.lines])


def test_apply_updates_what_it_wrote_and_leaves_equal_objects_alone(cluster: E2ECluster, namespaces: None) -> None:
    log = cluster.path("dave-audit.log")
    admin = ("--kubeconfig", str(cluster.admin_kubeconfig))
    name = "authsvc:suggested:user:rbac-dave"

    def apply(*verbs: str) -> Result:
        events = [event_line("rbac-dave", verb, "secrets", NS1, audit_id=f"dave-{verb}") for verb in verbs]
        log.write_text("".join(events))
        return cluster.authsvc("rbac", "suggest", "--audit-log", str(log), "--user", "rbac-dave", "--apply", *admin)

    created = apply("list")
    assert f"role.rbac.authorization.k8s.io/{name} -n {NS1} created" in created.stdout, created.describe()
    again = apply("list")
    assert f"role.rbac.authorization.k8s.io/{name} -n {NS1} unchanged" in again.stdout, again.describe()
    assert f"rolebinding.rbac.authorization.k8s.io/{name} -n {NS1} unchanged" in again.stdout
    wider = apply("list", "watch")
    assert f"role.rbac.authorization.k8s.io/{name} -n {NS1} configured" in wider.stdout, wider.describe()
    verbs = cluster.admin("get", "role", name, "-n", NS1, "-o", "jsonpath={.rules[*].verbs}")
    assert verbs == '["list","watch"]'


def event_line(user: str, verb: str, resource: str, namespace: str, *, audit_id: str) -> str:
    return line(event(verb, resource, namespace=namespace, user=user, audit_id=audit_id)) + "\n"


def test_apply_refuses_to_take_over_objects_it_did_not_write(cluster: E2ECluster, namespaces: None) -> None:
    # A Role of the same name that someone else made: --apply changes nothing, exit 1.
    name = "authsvc:suggested:user:rbac-carol"
    cluster.admin("create", "role", name, "-n", NS1, "--verb=get", "--resource=pods")
    log = cluster.path("carol-audit.log")
    log.write_text(event_line("rbac-carol", "list", "secrets", NS1, audit_id="carol"))

    result = cluster.authsvc(
        "rbac",
        "suggest",
        "--audit-log",
        str(log),
        "--user",
        "rbac-carol",
        "--apply",
        "--kubeconfig",
        str(cluster.admin_kubeconfig),
    )

    assert result.code == 1 and "is not managed by authsvc" in result.stderr, result.describe()
    rules = cluster.admin("get", "role", name, "-n", NS1, "-o", "jsonpath={.rules[*].resources}")
    assert "secrets" not in rules and "pods" in rules
    binding = cluster.kubectl(cluster.admin_kubeconfig, "get", "rolebinding", name, "-n", NS1)
    assert not binding.ok and "NotFound" in binding.stderr, binding.describe()
