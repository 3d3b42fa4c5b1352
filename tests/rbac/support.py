"""Audit events as kube-apiserver writes them (Go's encoder: compact, fields in struct order)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def event(
    verb: str,
    resource: str | None = None,
    *,
    namespace: str | None = None,
    name: str | None = None,
    group: str | None = None,
    subresource: str | None = None,
    uri: str | None = None,
    user: str = "alice",
    groups: Iterable[str] = ("dev", "system:authenticated"),
    impersonated: str | None = None,
    stage: str = "ResponseComplete",
    code: int = 200,
    version: str = "audit.k8s.io/v1",
    audit_id: str = "00000000-0000-0000-0000-000000000000",
) -> dict[str, Any]:
    """One Metadata-level event; `resource=None` makes a non-resource request to `uri`."""
    data: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": version,
        "level": "Metadata",
        "auditID": audit_id,
        "stage": stage,
        "requestURI": uri or _uri(resource, namespace, name, group, subresource),
        "verb": verb,
        "user": {"username": user, "groups": list(groups)},
    }
    if impersonated is not None:
        data["impersonatedUser"] = {"username": impersonated, "groups": ["system:authenticated"]}
    data["sourceIPs"] = ["127.0.0.1"]
    data["userAgent"] = "kubectl/v1.32.0 (linux/amd64) kubernetes/70d3cc9"
    if resource is not None:
        ref = {"resource": resource, "namespace": namespace, "name": name, "apiGroup": group, "apiVersion": "v1"}
        ref["subresource"] = subresource
        data["objectRef"] = {k: v for k, v in ref.items() if v is not None}
    data["responseStatus"] = {"metadata": {}, "code": code}
    data["requestReceivedTimestamp"] = "2024-05-01T10:00:00.000000Z"
    data["stageTimestamp"] = "2024-05-01T10:00:00.004000Z"
    return data


def line(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"))


def write_log(path: Path, events: Iterable[dict[str, Any] | str]) -> Path:
    """Events (dicts) or raw lines (str), one per line."""
    path.write_text("".join((e if isinstance(e, str) else line(e)) + "\n" for e in events))
    return path


def _uri(resource: str | None, namespace: str | None, name: str | None, group: str | None, sub: str | None) -> str:
    if resource is None:
        return "/healthz"
    parts = [f"namespaces/{namespace}" if namespace else "", resource, name or "", sub or ""]
    return (f"/apis/{group}/v1" if group else "/api/v1") + "".join(f"/{part}" for part in parts if part)


def allows(
    documents: Iterable[dict[str, Any]], verb: str, namespace: str, group: str, resource: str, name: str
) -> bool:
    """RBAC's decision for one resource request, from the suggested Roles and ClusterRole (the
    authorizer's rule matching, minus wildcards: suggestions never hold one)."""
    for doc in documents:
        if doc["kind"] == "Role" and doc["metadata"]["namespace"] != namespace:
            continue
        if doc["kind"] not in ("Role", "ClusterRole"):
            continue
        for rule in doc.get("rules", []):
            if (
                verb in rule["verbs"]
                and group in rule.get("apiGroups", [])
                and resource in rule.get("resources", [])
                and (not rule.get("resourceNames") or name in rule["resourceNames"])
            ):
                return True
    return False


def allows_url(documents: Iterable[dict[str, Any]], verb: str, url: str) -> bool:
    return any(
        verb in rule["verbs"] and url in rule.get("nonResourceURLs", [])
        for doc in documents
        if doc["kind"] == "ClusterRole"
        for rule in doc.get("rules", [])
    )
