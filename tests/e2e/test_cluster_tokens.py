"""Bootstrap tokens in the cluster, read by kube-apiserver itself (--enable-bootstrap-token-auth)
and by kubeadm; their cluster-info signatures checked the way `kubeadm join` checks them.

A token made while connected is a `bootstrap-token-<id>` Secret with kubeadm's fields: it
authenticates with authsvc's webhook stopped, and cluster-info carries a detached JWS of its
kubeconfig that verifies with the token secret (PyJWT, the payload put back) and equals what
the bootstrap signer computes. Twins: a token only in authsvc's database is Unauthorized with
the webhook stopped and invisible to kubeadm; deleting removes the Secret and the signature.
"""

from __future__ import annotations

import base64
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from tests.e2e.cluster import E2ECluster
from tests.e2e.harness import Result, eventually, run

UNAUTHORIZED = "(Unauthorized)"
NODE_GROUP = "system:bootstrappers:kubeadm:default-node-token"


def create_token(cluster: E2ECluster, *args: str) -> dict[str, Any]:
    out = cluster.authsvc.ok("token", "bootstrap", "create", "--ttl", "1h", "-o", "json", *args)
    created: dict[str, Any] = json.loads(out)
    return created


def connected(cluster: E2ECluster) -> tuple[str, str]:
    return ("--kubeconfig", str(cluster.admin_kubeconfig))


def secret_data(cluster: E2ECluster, token_id: str) -> dict[str, str]:
    secret = json.loads(
        cluster.admin("get", "secret", f"bootstrap-token-{token_id}", "-n", "kube-system", "-o", "json")
    )
    assert secret["type"] == "bootstrap.kubernetes.io/token"
    assert secret["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "authsvc"
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def cluster_info(cluster: E2ECluster) -> dict[str, str]:
    data: dict[str, str] = json.loads(
        cluster.admin("get", "configmap", "cluster-info", "-n", "kube-public", "-o", "jsonpath={.data}")
    )
    return data


def kubeadm_join_check(data: dict[str, str], token: str) -> bool:
    """kubeadm join's check (cmd/kubeadm/app/discovery/token: validateClusterInfoToken), with PyJWT:
    the signature for the token id verifies HS256 with the token secret over the kubeconfig."""
    token_id, secret = token.split(".")
    detached = data.get(f"jws-kubeconfig-{token_id}")
    if detached is None:
        return False
    header, empty, signature = detached.split(".")
    assert empty == ""  # detached: RFC 7515 appendix F
    payload = base64.urlsafe_b64encode(data["kubeconfig"].encode()).rstrip(b"=").decode()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)  # 16 bytes, as kubeadm's
        try:
            decoded = jwt.api_jws.PyJWS().decode_complete(
                f"{header}.{payload}.{signature}", secret.encode(), algorithms=["HS256"]
            )
        except jwt.InvalidSignatureError:
            return False
    return bool(
        decoded["header"] == {"alg": "HS256", "kid": token_id} and decoded["payload"] == data["kubeconfig"].encode()
    )


@pytest.fixture
def webhook_stopped(cluster: E2ECluster) -> Iterator[None]:
    """authsvc serve stopped: what authenticates now, kube-apiserver does itself."""
    cluster.webhook.stop()
    try:
        yield
    finally:
        cluster.webhook.start(cluster.webhook_context)


def test_connected_token_is_a_kubeadm_secret(cluster: E2ECluster) -> None:
    created = create_token(cluster, "--description", "node-7", *connected(cluster))
    token_id, secret = created["token"].split(".")

    data = secret_data(cluster, token_id)

    assert data == {
        "token-id": token_id,
        "token-secret": secret,
        "description": "node-7",
        "expiration": created["expires"].replace("+00:00", "Z"),
        "usage-bootstrap-authentication": "true",
        "usage-bootstrap-signing": "true",
        "auth-extra-groups": NODE_GROUP,
    }


def test_token_authenticates_natively_with_the_webhook_stopped(cluster: E2ECluster, webhook_stopped: None) -> None:
    native = create_token(cluster, *connected(cluster))
    only_in_authsvc = create_token(cluster)  # no connection: authsvc's database only
    for created in (native, only_in_authsvc):
        cluster.bind(f"e2e:{created['id']}-reads-namespaces", user=created["user"])

    listed = cluster.can_list_namespaces(cluster.token_kubeconfig("native-bootstrap", native["token"]))
    refused = cluster.kubectl(cluster.token_kubeconfig("db-bootstrap", only_in_authsvc["token"]), "get", "namespaces")

    assert listed.ok, listed.describe()
    assert not refused.ok and UNAUTHORIZED in refused.stderr, refused.describe()
    assert cluster.webhook_decisions(native["token"]) == []


def test_cluster_info_is_signed_as_kubeadm_join_checks_it(cluster: E2ECluster) -> None:
    signing = create_token(cluster, *connected(cluster))
    authentication_only = create_token(cluster, "--usages", "authentication", *connected(cluster))

    data = cluster_info(cluster)

    assert kubeadm_join_check(data, signing["token"])
    # The twins: no signature for a token that may not sign; a wrong secret does not verify.
    assert f"jws-kubeconfig-{authentication_only['id']}" not in data
    token_id, secret = signing["token"].split(".")
    assert not kubeadm_join_check(data, f"{token_id}.{secret[::-1]}")


def test_delete_removes_the_secret_and_the_signature(cluster: E2ECluster) -> None:
    created = create_token(cluster, *connected(cluster))
    token_id = created["id"]
    cluster.bind(f"e2e:{token_id}-reads-namespaces", user=created["user"])
    assert secret_data(cluster, token_id)["token-id"] == token_id
    assert f"jws-kubeconfig-{token_id}" in cluster_info(cluster)

    out = cluster.authsvc.ok("token", "bootstrap", "delete", token_id, *connected(cluster))

    assert f"secret/bootstrap-token-{token_id} -n kube-system deleted" in out, out
    gone = cluster.kubectl(
        cluster.admin_kubeconfig, "get", "secret", f"bootstrap-token-{token_id}", "-n", "kube-system"
    )
    assert not gone.ok and "NotFound" in gone.stderr, gone.describe()
    assert f"jws-kubeconfig-{token_id}" not in cluster_info(cluster)
    # Never used before (a success would sit in kube-apiserver's 10 s cache): refused at once.
    refused = cluster.kubectl(cluster.token_kubeconfig("bootstrap-deleted", created["token"]), "get", "namespaces")
    assert not refused.ok and UNAUTHORIZED in refused.stderr, refused.describe()


def kubeadm_token_list(kubeadm: Path, cluster: E2ECluster) -> Result:
    result = run([str(kubeadm), "token", "list", f"--kubeconfig={cluster.admin_kubeconfig}"], env={})
    assert result.ok, result.describe()
    return result


def test_kubeadm_token_list_shows_the_tokens(cluster: E2ECluster, kubeadm: Path) -> None:
    created = create_token(cluster, "--description", "kubeadm-reads-it", *connected(cluster))
    only_in_authsvc = create_token(cluster)

    listed = kubeadm_token_list(kubeadm, cluster)

    [line] = [line for line in listed.stdout.splitlines() if line.startswith(created["token"])]
    assert "authentication,signing" in line and "kubeadm-reads-it" in line and NODE_GROUP in line, line
    assert only_in_authsvc["id"] not in listed.stdout
    cluster.authsvc.ok("token", "bootstrap", "delete", created["id"], *connected(cluster))
    assert created["id"] not in kubeadm_token_list(kubeadm, cluster).stdout


def test_list_shows_where_each_token_lives_and_the_drift(cluster: E2ECluster, kubeadm: Path) -> None:
    both = create_token(cluster, *connected(cluster))
    only_in_authsvc = create_token(cluster)
    made_by_kubeadm = run(
        [str(kubeadm), "token", "create", "--ttl=1h", f"--kubeconfig={cluster.admin_kubeconfig}"], env={}
    )
    assert made_by_kubeadm.ok, made_by_kubeadm.describe()
    kubeadm_id = made_by_kubeadm.stdout.strip().split(".")[0]
    # Someone edits authsvc's Secret behind its back.
    cluster.admin(
        "patch",
        "secret",
        f"bootstrap-token-{both['id']}",
        "-n",
        "kube-system",
        "--type=merge",
        "-p",
        json.dumps({"stringData": {"auth-extra-groups": "system:bootstrappers:edited"}}),
    )

    rows = {
        r["id"]: r
        for r in json.loads(cluster.authsvc.ok("token", "bootstrap", "list", "-o", "json", *connected(cluster)))
    }

    assert rows[both["id"]]["location"] == "authsvc+cluster"
    assert any(d.startswith("groups differ") for d in rows[both["id"]]["drift"]), rows[both["id"]]
    assert rows[only_in_authsvc["id"]]["location"] == "authsvc"
    assert rows[only_in_authsvc["id"]]["drift"][0].startswith("no Secret in the cluster")
    assert rows[kubeadm_id]["location"] == "cluster"
    assert rows[kubeadm_id]["drift"][0].startswith("not in authsvc (not made by authsvc)")
    # kubeadm's token has no signature (no controller-manager here) until cluster bootstrap signs it.
    assert any("cluster-info has no valid signature" in d for d in rows[kubeadm_id]["drift"])
    cluster.authsvc.ok("cluster", "bootstrap", *connected(cluster))
    rows = {
        r["id"]: r
        for r in json.loads(cluster.authsvc.ok("token", "bootstrap", "list", "-o", "json", *connected(cluster)))
    }
    assert not any("cluster-info" in d for d in rows[kubeadm_id]["drift"])
    assert kubeadm_join_check(cluster_info(cluster), made_by_kubeadm.stdout.strip())


def test_a_refused_write_leaves_no_token_anywhere(cluster: E2ECluster) -> None:
    # May read and create bootstrap Secrets, may read cluster-info, may not update it: the dry run
    # of the signature update is refused before the Secret or authsvc's record is written.
    cluster.admin(
        "create", "role", "e2e:token-writer", "-n", "kube-system", "--verb=get,list,create", "--resource=secrets"
    )
    cluster.admin(
        "create",
        "rolebinding",
        "e2e:token-writer",
        "-n",
        "kube-system",
        "--role=e2e:token-writer",
        "--user=tokenwriter",
    )
    cluster.admin(
        "create", "role", "e2e:cluster-info-reader", "-n", "kube-public", "--verb=get", "--resource=configmaps"
    )
    cluster.admin(
        "create",
        "rolebinding",
        "e2e:cluster-info-reader",
        "-n",
        "kube-public",
        "--role=e2e:cluster-info-reader",
        "--user=tokenwriter",
    )
    writer = cluster.path("tokenwriter.kubeconfig")
    cluster.authsvc.ok("issue", "tokenwriter", "-o", str(writer))
    before = cluster.authsvc.ok("token", "bootstrap", "list", "-o", "json", *connected(cluster))

    result = eventually(
        lambda: cluster.authsvc("token", "bootstrap", "create", "--kubeconfig", str(writer)),
        lambda r: "cannot update" in r.stderr,
    )

    assert result.code == 1 and result.stdout == "" and result.stderr.count("\n") == 1, result.describe()
    assert result.stderr.startswith('error: forbidden: User "tokenwriter" cannot update resource "configmaps"')
    assert 'in the namespace "kube-public"' in result.stderr
    assert cluster.authsvc.ok("token", "bootstrap", "list", "-o", "json", *connected(cluster)) == before
