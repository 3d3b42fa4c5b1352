"""Grants: a ClusterRoleBinding (or a RoleBinding in one namespace) of a role to a user, group
or service account, written by authsvc so that a kubeconfig works the moment it is handed out.

Each grant is one binding with one subject and a name derived from it
(`authsvc:user:bob:clusterrole:pod-reader`), labelled `app.kubernetes.io/managed-by: authsvc`
and `app.kubernetes.io/component: grant`: granting twice changes nothing, and
`access revoke` finds every grant naming a person by its labels and subjects.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from authsvc.cluster.objects import COMPONENT_GRANT, KINDS, RBAC_GROUP, managed_labels
from authsvc.errors import InvalidInput
from pki.policy import SigningPolicy, check_groups, check_user
from pki.tokens.claims import check_dns_label, check_dns_subdomain

# kube-apiserver's limit for an object name (path-segment names: RBAC objects).
_MAX_NAME = 253


class SubjectKind(StrEnum):
    USER = "User"
    GROUP = "Group"
    SERVICE_ACCOUNT = "ServiceAccount"


class RoleKind(StrEnum):
    CLUSTER_ROLE = "ClusterRole"
    ROLE = "Role"


@dataclass(frozen=True, slots=True)
class Grant:
    """`role` (a ClusterRole, or a Role in `namespace`) for one subject; cluster-wide without a namespace."""

    subject_kind: SubjectKind
    subject: str
    role_kind: RoleKind
    role: str
    namespace: str | None = None

    def __post_init__(self) -> None:
        _check_path_segment(self.role, "role name")
        _check_path_segment(self.subject, "subject")
        if self.namespace is not None:
            check_dns_label(self.namespace, what="namespace")
        if self.role_kind is RoleKind.ROLE and self.namespace is None:
            raise InvalidInput(f"a Role lives in a namespace: give --namespace for role {self.role!r}")
        if self.subject_kind is SubjectKind.SERVICE_ACCOUNT:
            namespace, _, name = self.subject.partition(":")
            if not name:
                raise InvalidInput(f"service account {self.subject!r} must be NAMESPACE:NAME")
            check_dns_label(namespace, what="service account namespace")
            check_dns_subdomain(name, what="service account name")

    @property
    def binding_kind(self) -> str:
        return "RoleBinding" if self.namespace else "ClusterRoleBinding"

    @property
    def binding_name(self) -> str:
        name = f"authsvc:{self.subject_kind.value.lower()}:{self.subject}:{self.role_kind.value.lower()}:{self.role}"
        if len(name) <= _MAX_NAME:
            return name
        digest = hashlib.sha256(name.encode()).hexdigest()[:16]
        return f"{name[: _MAX_NAME - 17]}-{digest}"

    def describe(self) -> str:
        where = f"in namespace {self.namespace}" if self.namespace else "cluster-wide"
        return f"{self.role_kind.value} {self.role} for {self.subject_kind.value} {self.subject}, {where}"


def check_subject_policy(grant: Grant, policy: SigningPolicy) -> None:
    """Privileged users and groups (system:*, kubeadm:*) are refused here as everywhere authsvc
    hands out access, unless the policy allows them by name (PolicyError)."""
    if grant.subject_kind is SubjectKind.USER:
        check_user(policy, grant.subject)
    elif grant.subject_kind is SubjectKind.GROUP:
        check_groups(policy, (grant.subject,))


def binding(grant: Grant) -> Any:
    """The RoleBinding or ClusterRoleBinding model for `grant`."""
    from kubernetes import client

    if grant.subject_kind is SubjectKind.SERVICE_ACCOUNT:
        namespace, _, name = grant.subject.partition(":")
        subject = client.RbacV1Subject(kind="ServiceAccount", name=name, namespace=namespace)
    else:
        subject = client.RbacV1Subject(kind=grant.subject_kind.value, name=grant.subject, api_group=RBAC_GROUP)
    metadata = client.V1ObjectMeta(
        name=grant.binding_name, namespace=grant.namespace, labels=managed_labels(COMPONENT_GRANT)
    )
    role_ref = client.V1RoleRef(api_group=RBAC_GROUP, kind=grant.role_kind.value, name=grant.role)
    model = client.V1RoleBinding if grant.namespace else client.V1ClusterRoleBinding
    kind = grant.binding_kind
    return model(
        api_version=KINDS[kind].api_version, kind=kind, metadata=metadata, role_ref=role_ref, subjects=[subject]
    )


def _check_path_segment(value: str, what: str) -> None:
    """RBAC object names are path segments: not empty, not `.`/`..`, no `/` or `%`."""
    if not value or value in (".", "..") or "/" in value or "%" in value or any(ord(c) < 32 for c in value):
        raise InvalidInput(f"{what} {value!r} cannot be used in a binding (no '/', '%', control characters)")
