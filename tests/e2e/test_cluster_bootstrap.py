"""`authsvc cluster bootstrap` on a control plane started from `authsvc init`'s files.

The session's control plane ran it once at start (tests/e2e/cluster.py, with super-admin.conf,
as kubeadm does at init) and recorded what admin.conf got just before: Forbidden. Here:
admin.conf works after it; running it again changes nothing (resourceVersions unchanged); a
removed object comes back; discovery (cluster-info) is readable by anyone, and only it; kubeadm
itself reads authsvc's PKI tree. Bad input: no connection, a kubeconfig without the rights, an
API server that does not answer: one line, exit 1, nothing changed.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from tests.components.kube_apiserver import free_port
from tests.e2e.cluster import E2ECluster
from tests.e2e.harness import Result, eventually, run

MANAGED = "app.kubernetes.io/managed-by=authsvc,app.kubernetes.io/component=cluster-bootstrap"
BOOTSTRAP_KINDS = "clusterroles,clusterrolebindings,roles,rolebindings,configmaps"
FORBIDDEN = "(Forbidden)"


def bootstrap_objects(cluster: E2ECluster) -> dict[str, str]:
    """kind/namespace/name -> resourceVersion of every object `cluster bootstrap` manages."""
    listed = json.loads(cluster.admin("get", BOOTSTRAP_KINDS, "-A", "-l", MANAGED, "-o", "json"))
    return {
        f"{item['kind']}/{item['metadata'].get('namespace', '')}/{item['metadata']['name']}": item["metadata"][
            "resourceVersion"
        ]
        for item in listed["items"]
    }


def as_super_admin(cluster: E2ECluster, *args: str) -> Result:
    result = cluster.kubectl(cluster.super_admin_kubeconfig, *args)
    assert result.ok, result.describe()
    return result


def test_admin_conf_is_forbidden_before_bootstrap_and_cluster_admin_after(cluster: E2ECluster) -> None:
    before = cluster.admin_before_bootstrap
    assert before is not None and not before.ok, before
    assert FORBIDDEN in before.stderr and 'User "kubernetes-admin" cannot list resource "namespaces"' in before.stderr

    after = cluster.kubectl(cluster.admin_kubeconfig, "auth", "can-i", "*", "*")

    assert after.ok and after.stdout.strip() == "yes", after.describe()


def test_bootstrap_creates_kubeadm_objects_labelled(cluster: E2ECluster) -> None:
    objects = bootstrap_objects(cluster)

    assert set(objects) == {
        "ClusterRole//kubeadm:get-nodes",
        "ClusterRoleBinding//kubeadm:cluster-admins",
        "ClusterRoleBinding//kubeadm:kubelet-bootstrap",
        "ClusterRoleBinding//kubeadm:node-autoapprove-bootstrap",
        "ClusterRoleBinding//kubeadm:node-autoapprove-certificate-rotation",
        "ClusterRoleBinding//kubeadm:get-nodes",
        "Role/kube-public/kubeadm:bootstrap-signer-clusterinfo",
        "RoleBinding/kube-public/kubeadm:bootstrap-signer-clusterinfo",
        "ConfigMap/kube-public/cluster-info",
    }
    binding = json.loads(cluster.admin("get", "clusterrolebinding", "kubeadm:cluster-admins", "-o", "json"))
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "cluster-admin",
    }
    assert binding["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "kubeadm:cluster-admins"}
    ]


def test_running_it_again_changes_nothing(cluster: E2ECluster) -> None:
    before = bootstrap_objects(cluster)

    out = cluster.authsvc.ok("cluster", "bootstrap", "--kubeconfig", str(cluster.admin_kubeconfig))

    lines = out.strip().splitlines()
    assert len(lines) == len(before) and all(line.endswith(" unchanged") for line in lines), out
    assert bootstrap_objects(cluster) == before


def test_a_removed_binding_comes_back(cluster: E2ECluster) -> None:
    as_super_admin(cluster, "delete", "clusterrolebinding", "kubeadm:cluster-admins")
    try:
        denied = eventually(lambda: cluster.kubectl(cluster.admin_kubeconfig, "get", "namespaces"), lambda r: not r.ok)
        assert FORBIDDEN in denied.stderr, denied.describe()
    finally:
        out = cluster.authsvc.ok("cluster", "bootstrap", "--kubeconfig", str(cluster.super_admin_kubeconfig))

    assert "clusterrolebinding.rbac.authorization.k8s.io/kubeadm:cluster-admins created" in out, out
    assert out.count(" unchanged") == len(bootstrap_objects(cluster)) - 1, out
    assert cluster.can_list_namespaces(cluster.admin_kubeconfig).ok


def test_a_foreign_object_is_refused_unless_adopted(cluster: E2ECluster) -> None:
    # kubeadm:get-nodes remade by someone else, bound to another role: authsvc does not take it over
    # silently; --adopt replaces it (delete + create: a binding's roleRef cannot change in place).
    cluster.admin("delete", "clusterrolebinding", "kubeadm:get-nodes")
    cluster.admin("create", "clusterrolebinding", "kubeadm:get-nodes", "--clusterrole=view", "--group=someone")
    before = bootstrap_objects(cluster)
    connection = ("--kubeconfig", str(cluster.admin_kubeconfig))

    refused = cluster.authsvc("cluster", "bootstrap", *connection)

    assert refused.code == 1 and refused.stderr.count("\n") == 1, refused.describe()
    assert refused.stderr.startswith("error: ClusterRoleBinding kubeadm:get-nodes exists and is not managed by authsvc")
    assert "its roleRef, subjects differ" in refused.stderr and "--adopt" in refused.stderr
    assert bootstrap_objects(cluster) == before
    adopted = cluster.authsvc.ok("cluster", "bootstrap", "--adopt", *connection)
    assert "clusterrolebinding.rbac.authorization.k8s.io/kubeadm:get-nodes replaced" in adopted, adopted
    binding = json.loads(cluster.admin("get", "clusterrolebinding", "kubeadm:get-nodes", "-o", "json"))
    assert binding["roleRef"]["name"] == "kubeadm:get-nodes"
    assert binding["subjects"][0]["name"] == "system:bootstrappers:kubeadm:default-node-token"
    assert "replaced" not in cluster.authsvc.ok("cluster", "bootstrap", *connection)


def anonymous_get(cluster: E2ECluster, path: str) -> tuple[int, dict[str, Any]]:
    """GET with no credentials at all, as `kubeadm join` fetches cluster-info."""
    context = ssl.create_default_context(cafile=str(cluster.ca_file))
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))
    try:
        with opener.open(f"{cluster.server}{path}", timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def test_cluster_info_is_readable_anonymously_and_nothing_else(cluster: E2ECluster) -> None:
    status, body = anonymous_get(cluster, "/api/v1/namespaces/kube-public/configmaps/cluster-info")
    assert status == 200, body
    kubeconfig = yaml.safe_load(body["data"]["kubeconfig"])
    [entry] = kubeconfig["clusters"]
    assert entry["cluster"]["server"] == cluster.server
    assert base64.b64decode(entry["cluster"]["certificate-authority-data"]) == cluster.ca_file.read_bytes()

    cluster.admin("create", "configmap", "e2e-private", "-n", "kube-public", "--from-literal=k=v")
    other, _ = anonymous_get(cluster, "/api/v1/namespaces/kube-public/configmaps/e2e-private")
    listing, _ = anonymous_get(cluster, "/api/v1/namespaces/kube-public/configmaps")
    assert (other, listing) == (403, 403)


def test_dry_run_prints_objects_for_kubectl_and_changes_nothing(cluster: E2ECluster) -> None:
    before = bootstrap_objects(cluster)

    out = cluster.authsvc.ok("cluster", "bootstrap", "--dry-run", "-o", "yaml")  # no connection needed

    documents = list(yaml.safe_load_all(out))
    assert {d["kind"] for d in documents} == {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ConfigMap"}
    assert all(d["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "authsvc" for d in documents)
    manifest = cluster.path("bootstrap.yaml")
    manifest.write_text(out)
    # kubectl takes it as it is (server-side dry run: validated by the API server, stored nowhere).
    checked = cluster.kubectl(cluster.admin_kubeconfig, "apply", "--dry-run=server", "-f", str(manifest))
    assert checked.ok, checked.describe()
    assert bootstrap_objects(cluster) == before


# ---------------------------------------------------------------------------- bad input


def test_without_a_connection_it_says_how_to_get_one(cluster: E2ECluster) -> None:
    result = cluster.authsvc("cluster", "bootstrap")

    assert result.code == 1 and result.stdout == "", result.describe()
    assert result.stderr == "error: no cluster connection: set cluster.api.kubeconfig or --kubeconfig\n"


def test_a_kubeconfig_without_rights_names_the_missing_permission_and_changes_nothing(cluster: E2ECluster) -> None:
    # A user who may read RBAC objects and ConfigMaps, not write them: the plan succeeds, the
    # API server refuses the first write in the dry run, and nothing is written.
    readable = "--resource=clusterroles,clusterrolebindings,roles,rolebindings,configmaps,secrets"
    cluster.admin("create", "clusterrole", "e2e:rbac-reader", "--verb=get,list", readable)
    cluster.bind("e2e:auditor-reads-rbac", role="e2e:rbac-reader", user="auditor")
    auditor = cluster.path("auditor.kubeconfig")
    cluster.authsvc.ok("issue", "auditor", "-o", str(auditor))
    cluster.admin("delete", "clusterrolebinding", "kubeadm:get-nodes")  # something to create
    before = bootstrap_objects(cluster)
    try:
        result = eventually(
            lambda: cluster.authsvc("cluster", "bootstrap", "--kubeconfig", str(auditor)),
            lambda r: "cannot create" in r.stderr,
        )
        assert result.code == 1 and result.stderr.count("\n") == 1, result.describe()
        assert result.stderr.startswith('error: forbidden: User "auditor" cannot create resource "clusterrolebindings"')
        assert 'in API group "rbac.authorization.k8s.io" at the cluster scope' in result.stderr
        assert bootstrap_objects(cluster) == before
    finally:
        cluster.authsvc.ok("cluster", "bootstrap", "--kubeconfig", str(cluster.admin_kubeconfig))


def test_an_api_server_that_does_not_answer_is_one_clear_line(cluster: E2ECluster) -> None:
    config = yaml.safe_load(cluster.admin_kubeconfig.read_text())
    port = free_port()
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"
    down = cluster.path("down.kubeconfig")
    down.write_text(yaml.safe_dump(config))

    result = cluster.authsvc("cluster", "bootstrap", "--kubeconfig", str(down))

    assert result.code == 1 and result.stderr.count("\n") == 1, result.describe()
    assert result.stderr.startswith(
        f"error: cannot reach the API server at https://127.0.0.1:{port} (--kubeconfig {down})"
    )
    assert result.stderr.rstrip().endswith("connection refused"), result.stderr


# ---------------------------------------------------------------------------- kubeadm reads the PKI

LEAVES = (
    "apiserver",
    "apiserver-etcd-client",
    "apiserver-kubelet-client",
    "etcd-healthcheck-client",
    "etcd-peer",
    "etcd-server",
    "front-proxy-client",
)
CAS = ("ca", "etcd-ca", "front-proxy-ca")


def expiration_rows(out: str) -> dict[str, tuple[str, ...]]:
    """NAME -> (EXPIRES, CA or "") of a `certs check-expiration` table (kubeadm's or authsvc's);
    ("!MISSING!",) for a file kubeadm did not find."""
    rows: dict[str, tuple[str, ...]] = {}
    for line in out.splitlines():
        if line.startswith("!MISSING! "):
            rows[line.split()[1]] = ("!MISSING!",)
            continue
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) >= 4 and cells[1].endswith(" UTC"):
            # leaves: NAME EXPIRES RESIDUAL CA MANAGED; CAs: NAME EXPIRES RESIDUAL MANAGED
            rows[cells[0]] = (cells[1], cells[3] if len(cells) == 5 else "")
    return rows


def kubeadm_check_expiration(kubeadm: Path, cert_dir: Path, cluster: E2ECluster) -> Result:
    # kubeadm reads kubeconfig files from /etc/kubernetes whatever --cert-dir says: only the PKI
    # tree is compared. A kubeconfig that does not exist keeps it from asking any cluster.
    nowhere = cluster.path("no-such.conf")
    return run([str(kubeadm), "certs", "check-expiration", f"--cert-dir={cert_dir}", f"--kubeconfig={nowhere}"], env={})


def test_kubeadm_reads_the_pki_tree_authsvc_wrote(cluster: E2ECluster, kubeadm: Path) -> None:
    result = kubeadm_check_expiration(kubeadm, cluster.home / "pki", cluster)
    assert result.ok, result.describe()
    theirs = expiration_rows(result.stdout)
    ours = expiration_rows(cluster.authsvc.ok("certs", "check-expiration"))

    for name in (*LEAVES, *CAS):
        assert theirs.get(name) == ours[name], (name, result.stdout)
    assert theirs["apiserver"][1] == "ca" and theirs["etcd-server"][1] == "etcd-ca"


def test_kubeadm_sees_a_missing_certificate(cluster: E2ECluster, kubeadm: Path) -> None:
    broken = cluster.path("pki-without-apiserver")
    shutil.copytree(cluster.home / "pki", broken)
    (broken / "apiserver.crt").unlink()

    result = kubeadm_check_expiration(kubeadm, broken, cluster)

    assert expiration_rows(result.stdout).get("apiserver") == ("!MISSING!",), result.describe()
