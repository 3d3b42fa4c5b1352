"""The cluster side of a person's access: the RoleBindings and ClusterRoleBindings that name
them (as a User, or as a ServiceAccount for `system:serviceaccount:<ns>:<name>`) or one of
their groups, read through the cluster connection (authsvc/cluster/connection.py).

`access revoke` removes a binding only when authsvc manages it (the managed-by label) and the
person is its only subject (a grant: authsvc writes one subject per binding); every other
binding that names them is listed, with the command that removes it, never touched: a binding
someone else wrote, or one shared with others, is theirs to change. A binding that names one
of the person's groups is never removed either (it gives access to everyone in the group); it
is reported, because a client certificate keeps the rights of the groups it carries.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from authsvc.cluster.objects import COMPONENT_LABEL, KINDS, MANAGED_BY, MANAGED_BY_LABEL, ObjectRef

if TYPE_CHECKING:
    from authsvc.cluster.connection import ClusterClient
    from authsvc.cluster.grants import Grant

SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
# Groups every authenticated request has: bindings to them are everyone's, not this person's.
IMPLICIT_GROUPS = frozenset({"system:authenticated", "system:unauthenticated"})


@dataclass(frozen=True, slots=True)
class Binding:
    """One binding that names the person (`via` "user") or one of their groups (`via` "group:<name>")."""

    kind: str  # RoleBinding or ClusterRoleBinding
    name: str
    namespace: str | None
    role_kind: str
    role: str
    via: str
    managed: bool  # labelled app.kubernetes.io/managed-by=authsvc
    component: str  # its app.kubernetes.io/component label ("grant" for access grant / issue --clusterrole)
    only_subject: bool  # the person is its only subject

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(KINDS[self.kind], self.name, self.namespace)

    @property
    def removable(self) -> bool:
        """What `access revoke` removes: authsvc's own binding of this person alone."""
        return self.managed and self.via == "user" and self.only_subject

    @property
    def path(self) -> str:
        """kind[/namespace]/name, as the audit trail names it."""
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"

    def kubectl_delete(self) -> str:
        where = f" -n {self.namespace}" if self.namespace else ""
        return f"kubectl delete {self.kind.lower()} {self.name}{where}"

    def describe(self) -> str:
        where = f" in {self.namespace}" if self.namespace else ""
        via = "" if self.via == "user" else f" (via {self.via.replace(':', ' ', 1)})"
        return f"{self.kind} {self.name}{where} -> {self.role_kind} {self.role}{via}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "role": f"{self.role_kind}/{self.role}",
            "via": self.via,
            "managedByAuthsvc": self.managed,
        }

    def grant(self, user: str) -> Grant:
        """The grant that re-creates this binding for `user` (`access restore`)."""
        from authsvc.cluster.grants import Grant, RoleKind, SubjectKind

        if user.startswith(SERVICE_ACCOUNT_PREFIX):
            account = user[len(SERVICE_ACCOUNT_PREFIX) :]
            return Grant(SubjectKind.SERVICE_ACCOUNT, account, RoleKind(self.role_kind), self.role, self.namespace)
        return Grant(SubjectKind.USER, user, RoleKind(self.role_kind), self.role, self.namespace)


Listed = list[tuple[str, Any]]


def list_bindings(client: ClusterClient) -> Listed:
    """(kind, object) of every ClusterRoleBinding, then every RoleBinding in every namespace."""
    cluster_wide = client.call("list ClusterRoleBindings", client.rbac.list_cluster_role_binding)
    namespaced = client.call("list RoleBindings in all namespaces", client.rbac.list_role_binding_for_all_namespaces)
    return [("ClusterRoleBinding", item) for item in cluster_wide.items or ()] + [
        ("RoleBinding", item) for item in namespaced.items or ()
    ]


def bindings_naming(
    client: ClusterClient | None, user: str, groups: Iterable[str], *, listed: Listed | None = None
) -> list[Binding]:
    """The bindings (of `listed`, else read now through `client`) that name `user` or one of `groups`."""
    if listed is None:
        assert client is not None
        listed = list_bindings(client)
    wanted_groups = {g for g in groups if g not in IMPLICIT_GROUPS}
    return [binding for kind, item in listed for binding in _matches(kind, item, user, wanted_groups)]


def _matches(kind: str, item: Any, user: str, groups: set[str]) -> list[Binding]:
    subjects = list(item.subjects or ())
    labels = item.metadata.labels or {}
    managed = labels.get(MANAGED_BY_LABEL) == MANAGED_BY
    component = labels.get(COMPONENT_LABEL, "")
    role = item.role_ref
    vias = []
    if any(_names_user(s, user) for s in subjects):
        vias.append("user")
    vias += [f"group:{s.name}" for s in subjects if s.kind == "Group" and s.name in groups]
    only = len(subjects) == 1
    return [
        Binding(kind, item.metadata.name, item.metadata.namespace, role.kind, role.name, via, managed, component, only)
        for via in dict.fromkeys(vias)
    ]


def _names_user(subject: Any, user: str) -> bool:
    if subject.kind == "User":
        return bool(subject.name == user)
    if subject.kind == "ServiceAccount" and user.startswith(SERVICE_ACCOUNT_PREFIX):
        namespace, _, name = user[len(SERVICE_ACCOUNT_PREFIX) :].partition(":")
        return bool(subject.name == name and subject.namespace == namespace)
    return False


def removable(bindings: Sequence[Binding]) -> list[Binding]:
    return [b for b in bindings if b.removable]
