"""Write suggested objects into a cluster: create, or update what authsvc wrote before.

Takes a ready kubernetes ApiClient (built by the caller from the cluster connection). Every
object is read first; if one exists without the label app.kubernetes.io/managed-by=authsvc,
nothing is written (authsvc never takes over a Role someone else made). With `dry_run` the API
server runs every check (validation, RBAC's escalation check) and persists nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from kubernetes.client import ApiClient, RbacAuthorizationV1Api, V1ObjectMeta
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from authsvc.errors import AuthsvcError, BackendUnavailable
from authsvc.rbac.objects import MANAGED_BY, MANAGED_BY_LABEL, RbacObject, describe, to_dicts

Action = Literal["created", "configured", "unchanged"]
# Per kind: the API methods (read, create, replace) and the fields that carry the grant.
_METHODS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "ClusterRole": ("read_cluster_role", "create_cluster_role", "replace_cluster_role", ("rules",)),
    "ClusterRoleBinding": (
        "read_cluster_role_binding",
        "create_cluster_role_binding",
        "replace_cluster_role_binding",
        ("roleRef", "subjects"),
    ),
    "Role": ("read_namespaced_role", "create_namespaced_role", "replace_namespaced_role", ("rules",)),
    "RoleBinding": (
        "read_namespaced_role_binding",
        "create_namespaced_role_binding",
        "replace_namespaced_role_binding",
        ("roleRef", "subjects"),
    ),
}


class ApplyRefused(AuthsvcError):
    """The API server refused a request, or an object in the way is not authsvc's."""


@dataclass(frozen=True, slots=True)
class Applied:
    what: str  # kubectl's name for the object
    action: Action
    dry_run: bool

    def __str__(self) -> str:
        return f"{self.what} {self.action}{' (server dry run)' if self.dry_run else ''}"


def apply_objects(api_client: ApiClient, objects: Sequence[RbacObject], *, dry_run: bool = False) -> list[Applied]:
    """Create or update `objects` in order. Raises ApplyRefused (nothing written when an object
    in the way is not authsvc's) or BackendUnavailable when the API server cannot be reached."""
    api = RbacAuthorizationV1Api(api_client)
    existing = [_read(api, obj) for obj in objects]
    for obj, current in zip(objects, existing, strict=True):
        if current is not None and _labels(current).get(MANAGED_BY_LABEL) != MANAGED_BY:
            raise ApplyRefused(
                f"{describe(obj)} exists and is not managed by authsvc (no label {MANAGED_BY_LABEL}={MANAGED_BY}): "
                "nothing was applied; choose another --name-prefix, or delete it"
            )
    return [_write(api, obj, current, dry_run) for obj, current in zip(objects, existing, strict=True)]


def _read(api: RbacAuthorizationV1Api, obj: RbacObject) -> Any | None:
    """The object as it is in the cluster, or None when there is none."""
    return _call(obj, "read", getattr(api, _METHODS[str(obj.kind)][0]), _where(obj), missing_ok=True)


def _write(api: RbacAuthorizationV1Api, obj: RbacObject, current: Any, dry_run: bool) -> Applied:
    _, create, replace, fields = _METHODS[str(obj.kind)]
    flags = {"dry_run": "All"} if dry_run else {}
    where = _where(obj)
    namespace = {"namespace": where["namespace"]} if "namespace" in where else {}
    if current is None:
        _call(obj, "create", getattr(api, create), {"body": obj, **namespace, **flags})
        return Applied(describe(obj), "created", dry_run)
    wanted, found = to_dicts([obj, current])
    if all(wanted.get(f) == found.get(f) for f in fields):
        return Applied(describe(obj), "unchanged", dry_run)
    # The read's resourceVersion makes the update conditional: a concurrent change is a conflict.
    _meta(obj).resource_version = current.metadata.resource_version
    _call(obj, "update", getattr(api, replace), {"body": obj, **where, **flags})
    return Applied(describe(obj), "configured", dry_run)


def _call(obj: RbacObject, verb: str, method: Any, kwargs: dict[str, Any], *, missing_ok: bool = False) -> Any:
    try:
        return method(**kwargs)
    except ApiException as e:
        if missing_ok and e.status == 404:
            return None
        raise ApplyRefused(f"cannot {verb} {describe(obj)}: {_status_message(e)}") from e
    except HTTPError as e:
        raise BackendUnavailable(f"cannot reach the API server to {verb} {describe(obj)}: {e}") from e


def _where(obj: RbacObject) -> dict[str, str]:
    meta = _meta(obj)
    return {"name": str(meta.name), **({"namespace": str(meta.namespace)} if meta.namespace else {})}


def _meta(obj: RbacObject) -> V1ObjectMeta:
    assert obj.metadata is not None, "build_objects sets every object's metadata"
    return obj.metadata


def _labels(obj: Any) -> dict[str, str]:
    return dict(obj.metadata.labels or {}) if obj.metadata is not None else {}


def _status_message(error: ApiException) -> str:
    """The API server's Status message (e.g. RBAC's escalation refusal), else HTTP status + reason."""
    try:
        message = json.loads(error.body or "").get("message")
    except (ValueError, AttributeError):
        message = None
    return f"{error.status} {error.reason}: {message}" if message else f"{error.status} {error.reason}"
