"""The objects `kubeadm init` creates so that its PKI works, as authsvc writes them
(`authsvc cluster bootstrap`), from kubeadm's phases (cmd/kubeadm/app/phases/...):

- `kubeadm:cluster-admins` → cluster-admin (kubeadm >= 1.29; admin.conf's user is only in
  that group, so without it admin.conf is authenticated and Forbidden everywhere);
- bootstrap tokens (phases/bootstraptoken/node): the node-token group may post CSRs
  (`kubeadm:kubelet-bootstrap`), get nodes (`kubeadm:get-nodes`), and have its node-client CSRs
  auto-approved (`kubeadm:node-autoapprove-bootstrap`); nodes may renew their own client
  certificates (`kubeadm:node-autoapprove-certificate-rotation`);
- discovery (phases/bootstraptoken/clusterinfo): the `cluster-info` ConfigMap in kube-public
  with the API server's URL, the CA and a signature per signing bootstrap token, readable by
  `system:anonymous` through the `kubeadm:bootstrap-signer-clusterinfo` Role.

Pure: the models are built from their inputs; authsvc/cluster/apply.py writes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from authsvc.cluster import cluster_info
from authsvc.cluster.objects import COMPONENT_BOOTSTRAP, KINDS, RBAC_GROUP, managed_labels

CLUSTER_ADMINS_GROUP = "kubeadm:cluster-admins"
NODE_TOKEN_GROUP = "system:bootstrappers:kubeadm:default-node-token"
NODES_GROUP = "system:nodes"
ANONYMOUS = "system:anonymous"
CLUSTER_INFO_READER = "kubeadm:bootstrap-signer-clusterinfo"
GET_NODES = "kubeadm:get-nodes"

# (binding name, cluster role, group): kubeadm's ClusterRoleBindings. The roles other than
# kubeadm:get-nodes are the API server's own bootstrap policy (they exist from its first start).
CLUSTER_ROLE_BINDINGS: tuple[tuple[str, str, str], ...] = (
    (CLUSTER_ADMINS_GROUP, "cluster-admin", CLUSTER_ADMINS_GROUP),
    ("kubeadm:kubelet-bootstrap", "system:node-bootstrapper", NODE_TOKEN_GROUP),
    (
        "kubeadm:node-autoapprove-bootstrap",
        "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
        NODE_TOKEN_GROUP,
    ),
    (
        "kubeadm:node-autoapprove-certificate-rotation",
        "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
        NODES_GROUP,
    ),
    (GET_NODES, GET_NODES, NODE_TOKEN_GROUP),
)


def _meta(name: str, namespace: str | None = None) -> Any:
    from kubernetes import client

    return client.V1ObjectMeta(name=name, namespace=namespace, labels=managed_labels(COMPONENT_BOOTSTRAP))


def _subject(kind: str, name: str) -> Any:
    from kubernetes import client

    return client.RbacV1Subject(kind=kind, name=name, api_group=RBAC_GROUP)


def cluster_role_binding(name: str, role: str, group: str) -> Any:
    from kubernetes import client

    return client.V1ClusterRoleBinding(
        api_version=KINDS["ClusterRoleBinding"].api_version,
        kind="ClusterRoleBinding",
        metadata=_meta(name),
        role_ref=client.V1RoleRef(api_group=RBAC_GROUP, kind="ClusterRole", name=role),
        subjects=[_subject("Group", group)],
    )


def get_nodes_role() -> Any:
    from kubernetes import client

    return client.V1ClusterRole(
        api_version=KINDS["ClusterRole"].api_version,
        kind="ClusterRole",
        metadata=_meta(GET_NODES),
        rules=[client.V1PolicyRule(api_groups=[""], resources=["nodes"], verbs=["get"])],
    )


def cluster_info_reader() -> list[Any]:
    """The Role and RoleBinding that let anyone (system:anonymous) get cluster-info, and nothing else."""
    from kubernetes import client

    namespace = cluster_info.PUBLIC_NAMESPACE
    role = client.V1Role(
        api_version=KINDS["Role"].api_version,
        kind="Role",
        metadata=_meta(CLUSTER_INFO_READER, namespace),
        rules=[
            client.V1PolicyRule(
                api_groups=[""], resources=["configmaps"], resource_names=[cluster_info.CLUSTER_INFO], verbs=["get"]
            )
        ],
    )
    binding = client.V1RoleBinding(
        api_version=KINDS["RoleBinding"].api_version,
        kind="RoleBinding",
        metadata=_meta(CLUSTER_INFO_READER, namespace),
        role_ref=client.V1RoleRef(api_group=RBAC_GROUP, kind="Role", name=CLUSTER_INFO_READER),
        subjects=[_subject("User", ANONYMOUS)],
    )
    return [role, binding]


def cluster_info_configmap(server: str, ca_pem: bytes, signing: Mapping[str, str]) -> Any:
    """cluster-info with its kubeconfig and one signature per (token id → secret) in `signing`."""
    from kubernetes import client

    content = cluster_info.cluster_info_kubeconfig(server, ca_pem)
    return client.V1ConfigMap(
        api_version="v1",
        kind="ConfigMap",
        metadata=_meta(cluster_info.CLUSTER_INFO, cluster_info.PUBLIC_NAMESPACE),
        data=cluster_info.cluster_info_data(content, signing),
    )


def bootstrap_objects(server: str, ca_pem: bytes, signing: Mapping[str, str]) -> list[Any]:
    """Everything `authsvc cluster bootstrap` applies, roles before the bindings that name them."""
    bindings = [cluster_role_binding(*row) for row in CLUSTER_ROLE_BINDINGS]
    return [get_nodes_role(), *bindings, *cluster_info_reader(), cluster_info_configmap(server, ca_pem, signing)]
