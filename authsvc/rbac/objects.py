"""Roles, ClusterRoles and their bindings, built with the kubernetes client's models.

One ClusterRole (cluster-scoped resources, requests across all namespaces, URLs) with its
ClusterRoleBinding, and one Role with its RoleBinding per namespace, all with the same name
and the label app.kubernetes.io/managed-by=authsvc. The client's ApiClient serializes them
into the dicts `kubectl apply` reads; `render` writes them as YAML documents or a JSON List.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import yaml
from kubernetes.client import (
    ApiClient,
    RbacV1Subject,
    V1ClusterRole,
    V1ClusterRoleBinding,
    V1ObjectMeta,
    V1PolicyRule,
    V1Role,
    V1RoleBinding,
    V1RoleRef,
)

from authsvc.rbac.grants import Grants, Rule
from authsvc.rbac.subjects import RBAC_GROUP, Subject

RBAC_API_VERSION = f"{RBAC_GROUP}/v1"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "authsvc"

RbacObject = V1ClusterRole | V1ClusterRoleBinding | V1Role | V1RoleBinding


def build_objects(grants: Grants, subject: Subject, name: str) -> list[RbacObject]:
    """The objects that give `subject` exactly `grants`: the ClusterRole pair first (if any),
    then a Role pair per namespace in name order."""
    objects: list[RbacObject] = []
    cluster_rules = grants.rules()
    if cluster_rules:
        objects += [
            V1ClusterRole(
                api_version=RBAC_API_VERSION, kind="ClusterRole", metadata=_meta(name), rules=_rules(cluster_rules)
            ),
            V1ClusterRoleBinding(
                api_version=RBAC_API_VERSION,
                kind="ClusterRoleBinding",
                metadata=_meta(name),
                role_ref=V1RoleRef(api_group=RBAC_GROUP, kind="ClusterRole", name=name),
                subjects=[RbacV1Subject(**_subject_fields(subject))],
            ),
        ]
    for namespace in grants.namespaces():
        objects += [
            V1Role(
                api_version=RBAC_API_VERSION,
                kind="Role",
                metadata=_meta(name, namespace),
                rules=_rules(grants.rules(namespace)),
            ),
            V1RoleBinding(
                api_version=RBAC_API_VERSION,
                kind="RoleBinding",
                metadata=_meta(name, namespace),
                role_ref=V1RoleRef(api_group=RBAC_GROUP, kind="Role", name=name),
                subjects=[RbacV1Subject(**_subject_fields(subject))],
            ),
        ]
    return objects


def to_dicts(objects: Sequence[Any]) -> list[dict[str, Any]]:
    """The objects as the API server's JSON shape (camelCase, no unset fields)."""
    with ApiClient() as client:
        return [client.sanitize_for_serialization(obj) for obj in objects]


def render(objects: Sequence[RbacObject], fmt: str) -> str:
    """`yaml`: one document per object (what audit2rbac prints); `json`: a v1 List. Both are
    what `kubectl apply -f` takes."""
    documents = to_dicts(objects)
    if fmt == "json":
        return json.dumps({"apiVersion": "v1", "kind": "List", "items": documents}, indent=2)
    # libyaml's emitter when PyYAML has it (same output, ~4x faster on a large suggestion).
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump_all(documents, Dumper=dumper, sort_keys=False).rstrip()


def describe(obj: RbacObject) -> str:
    """kubectl's way of naming an object: `role.rbac.authorization.k8s.io/NAME -n NS`."""
    meta = obj.metadata
    assert meta is not None
    where = f" -n {meta.namespace}" if meta.namespace else ""
    return f"{str(obj.kind).lower()}.{RBAC_GROUP}/{meta.name}{where}"


def _meta(name: str, namespace: str | None = None) -> V1ObjectMeta:
    return V1ObjectMeta(name=name, namespace=namespace, labels={MANAGED_BY_LABEL: MANAGED_BY})


def _rules(rules: Sequence[Rule]) -> list[V1PolicyRule]:
    return [
        V1PolicyRule(
            verbs=list(rule.verbs),
            api_groups=list(rule.api_groups) or None,
            resources=list(rule.resources) or None,
            resource_names=list(rule.resource_names) or None,
            non_resource_urls=list(rule.non_resource_urls) or None,
        )
        for rule in rules
    ]


def _subject_fields(subject: Subject) -> dict[str, str]:
    fields = subject.rbac_subject()
    return {"api_group" if key == "apiGroup" else key: value for key, value in fields.items()}
