"""Grants: one binding per (subject, role), named after both, refused for privileged subjects."""

from __future__ import annotations

import pytest

from authsvc.cluster.grants import Grant, RoleKind, SubjectKind, binding, check_subject_policy
from authsvc.cluster.objects import serialize
from authsvc.errors import InvalidInput
from authsvc.settings.pki import PolicySettings
from pki.errors import PolicyError

RBAC = "rbac.authorization.k8s.io"


def test_a_cluster_role_for_a_user_is_a_cluster_role_binding() -> None:
    body = serialize(binding(Grant(SubjectKind.USER, "bob", RoleKind.CLUSTER_ROLE, "pod-reader")))

    assert body == {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {
            "name": "authsvc:user:bob:clusterrole:pod-reader",
            "labels": {"app.kubernetes.io/managed-by": "authsvc", "app.kubernetes.io/component": "grant"},
        },
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "pod-reader"},
        "subjects": [{"apiGroup": RBAC, "kind": "User", "name": "bob"}],
    }


def test_in_a_namespace_it_is_a_role_binding_there() -> None:
    body = serialize(binding(Grant(SubjectKind.SERVICE_ACCOUNT, "ci:deployer", RoleKind.ROLE, "deploy", "ci")))

    assert body["kind"] == "RoleBinding" and body["metadata"]["namespace"] == "ci"
    assert body["metadata"]["name"] == "authsvc:serviceaccount:ci:deployer:role:deploy"
    assert body["subjects"] == [{"kind": "ServiceAccount", "name": "deployer", "namespace": "ci"}]


def test_a_very_long_name_is_shortened_with_a_digest() -> None:
    grant = Grant(SubjectKind.GROUP, "g" * 300, RoleKind.CLUSTER_ROLE, "view")
    other = Grant(SubjectKind.GROUP, "g" * 299 + "h", RoleKind.CLUSTER_ROLE, "view")
    assert len(grant.binding_name) == 253 and grant.binding_name != other.binding_name


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((SubjectKind.USER, "bob", RoleKind.ROLE, "deploy"), "give --namespace"),
        ((SubjectKind.USER, "bob", RoleKind.CLUSTER_ROLE, "a/b"), "cannot be used in a binding"),
        ((SubjectKind.USER, "..", RoleKind.CLUSTER_ROLE, "view"), "cannot be used in a binding"),
        ((SubjectKind.SERVICE_ACCOUNT, "deployer", RoleKind.CLUSTER_ROLE, "view"), "NAMESPACE:NAME"),
        ((SubjectKind.USER, "bob", RoleKind.CLUSTER_ROLE, "view", "Not_A_Namespace"), "not a valid name"),
    ],
)
def test_bad_grants_are_refused_before_anything(arguments: tuple[object, ...], message: str) -> None:
    with pytest.raises((InvalidInput, PolicyError), match=message):
        Grant(*arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "subject"),
    [
        (SubjectKind.GROUP, "system:masters"),
        (SubjectKind.GROUP, "kubeadm:cluster-admins"),
        (SubjectKind.USER, "system:admin"),
    ],
)
def test_privileged_subjects_are_refused_unless_allowed_by_name(kind: SubjectKind, subject: str) -> None:
    grant = Grant(kind, subject, RoleKind.CLUSTER_ROLE, "view")
    with pytest.raises(PolicyError, match=subject):
        check_subject_policy(grant, PolicySettings().to_policy())
    allowed = PolicySettings(allowed_groups=(subject,), allowed_users=(subject,)).to_policy()
    check_subject_policy(grant, allowed)
