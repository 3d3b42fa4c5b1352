"""The kinds of objects authsvc writes into a cluster, and how each is read, written and compared.

Objects are the kubernetes client's models, serialized by its ApiClient; this module knows,
per kind, which API and method names serve it and which fields authsvc owns (the ones
compared to decide whether an existing object already matches). Everything authsvc writes
carries `app.kubernetes.io/managed-by: authsvc` and an `app.kubernetes.io/component` label
saying which feature wrote it, so that a later command (access revoke, cluster bootstrap)
touches only its own objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from authsvc.cluster.errors import ClusterNotFound

if TYPE_CHECKING:
    from authsvc.cluster.connection import ClusterClient

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "authsvc"
COMPONENT_LABEL = "app.kubernetes.io/component"
# Values of COMPONENT_LABEL: which feature wrote an object.
COMPONENT_BOOTSTRAP = "cluster-bootstrap"
COMPONENT_BOOTSTRAP_TOKEN = "bootstrap-token"
COMPONENT_GRANT = "grant"
# The field manager named in the objects' managedFields (server-side bookkeeping of who wrote what).
FIELD_MANAGER = "authsvc"
RBAC_GROUP = "rbac.authorization.k8s.io"


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind: its API (an attribute of ClusterClient), method suffix and the fields authsvc owns."""

    name: str
    api_version: str
    api: str
    method: str
    namespaced: bool
    owned: tuple[str, ...]
    # kubectl's name for it in messages ("clusterrolebinding.rbac.authorization.k8s.io").
    resource: str
    # Fields the API server refuses to change (a binding's roleRef): a change means delete + create.
    immutable: tuple[str, ...] = ()


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("ClusterRole", f"{RBAC_GROUP}/v1", "rbac", "cluster_role", False, ("rules",), f"clusterrole.{RBAC_GROUP}"),
        Kind(
            "ClusterRoleBinding",
            f"{RBAC_GROUP}/v1",
            "rbac",
            "cluster_role_binding",
            False,
            ("roleRef", "subjects"),
            f"clusterrolebinding.{RBAC_GROUP}",
            immutable=("roleRef",),
        ),
        Kind("Role", f"{RBAC_GROUP}/v1", "rbac", "role", True, ("rules",), f"role.{RBAC_GROUP}"),
        Kind(
            "RoleBinding",
            f"{RBAC_GROUP}/v1",
            "rbac",
            "role_binding",
            True,
            ("roleRef", "subjects"),
            f"rolebinding.{RBAC_GROUP}",
            immutable=("roleRef",),
        ),
        Kind("ConfigMap", "v1", "core", "config_map", True, ("data", "binaryData"), "configmap"),
        Kind("Secret", "v1", "core", "secret", True, ("type", "data"), "secret"),
    )
}


@dataclass(frozen=True, slots=True)
class ObjectRef:
    kind: Kind
    name: str
    namespace: str | None = None

    @classmethod
    def of(cls, obj: Any) -> ObjectRef:
        return cls(KINDS[obj.kind], obj.metadata.name, obj.metadata.namespace)

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind.name} {where}{self.name}"

    @property
    def kubectl_name(self) -> str:
        """As kubectl prints it: `clusterrolebinding.rbac.authorization.k8s.io/kubeadm:cluster-admins`."""
        return f"{self.kind.resource}/{self.name}"


def managed_labels(component: str) -> dict[str, str]:
    return {MANAGED_BY_LABEL: MANAGED_BY, COMPONENT_LABEL: component}


def is_managed(serialized: Mapping[str, Any]) -> bool:
    labels = (serialized.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(MANAGED_BY_LABEL) == MANAGED_BY)


@cache
def _serializer() -> Any:
    """An ApiClient used only to serialize models (no connection; printing objects needs none)."""
    from kubernetes import client

    return client.ApiClient()


def serialize(obj: Any) -> Any:
    """A model as the API server's JSON (camelCase keys, None fields left out)."""
    return _serializer().sanitize_for_serialization(obj)


def owned_fields(kind: Kind, serialized: Mapping[str, Any]) -> dict[str, Any]:
    """The fields authsvc compares, with empty ones dropped (the server omits them too)."""
    return {field: serialized[field] for field in kind.owned if serialized.get(field) not in (None, {}, [])}


def _method(client: ClusterClient, verb: str, kind: Kind) -> Any:
    api = getattr(client, kind.api)
    return getattr(api, f"{verb}_{'namespaced_' if kind.namespaced else ''}{kind.method}")


def _scope(ref: ObjectRef) -> dict[str, str]:
    return {"namespace": ref.namespace or ""} if ref.kind.namespaced else {}


def read(client: ClusterClient, ref: ObjectRef) -> Any | None:
    """The object, or None when it does not exist."""
    try:
        return client.call(f"get {ref}", _method(client, "read", ref.kind), ref.name, **_scope(ref))
    except ClusterNotFound:
        return None


def create(client: ClusterClient, obj: Any, *, dry_run: bool = False) -> Any:
    ref = ObjectRef.of(obj)
    options = {"dry_run": "All"} if dry_run else {}
    method = _method(client, "create", ref.kind)
    return client.call(f"create {ref}", method, body=obj, field_manager=FIELD_MANAGER, **_scope(ref), **options)


def replace(client: ClusterClient, obj: Any, *, dry_run: bool = False) -> Any:
    ref = ObjectRef.of(obj)
    options = {"dry_run": "All"} if dry_run else {}
    method = _method(client, "replace", ref.kind)
    return client.call(
        f"update {ref}", method, ref.name, body=obj, field_manager=FIELD_MANAGER, **_scope(ref), **options
    )


def delete(client: ClusterClient, ref: ObjectRef, *, dry_run: bool = False) -> None:
    """Delete; an object that is already gone is not an error."""
    options = {"dry_run": "All"} if dry_run else {}
    try:
        client.call(f"delete {ref}", _method(client, "delete", ref.kind), ref.name, **_scope(ref), **options)
    except ClusterNotFound:
        return
