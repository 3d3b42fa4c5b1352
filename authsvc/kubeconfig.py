"""Kubeconfig documents (clientcmd v1 `Config`), built as data and emitted by a YAML library.

Nothing here pastes strings into YAML: names that reach the file go through the YAML
emitter, and are validated first (`pki.names.check_name`).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pki.names import check_name
from pki.store import atomic_write


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass(frozen=True, slots=True)
class ClusterEntry:
    name: str
    server: str
    ca_pem: bytes

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "cluster": {"certificate-authority-data": b64(self.ca_pem), "server": self.server}}


@dataclass(frozen=True, slots=True)
class UserEntry:
    """One of: embedded client cert + key, client cert + key path, bearer token, or exec plugin."""

    name: str
    client_cert_pem: bytes | None = None
    client_key_pem: bytes | None = None
    client_key_path: str | None = None
    token: str | None = None
    exec_config: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        user: dict[str, Any] = {}
        if self.client_cert_pem is not None:
            user["client-certificate-data"] = b64(self.client_cert_pem)
        if self.client_key_pem is not None:
            user["client-key-data"] = b64(self.client_key_pem)
        if self.client_key_path is not None:
            user["client-key"] = self.client_key_path
        if self.token is not None:
            user["token"] = self.token
        if self.exec_config is not None:
            user["exec"] = self.exec_config
        return {"name": self.name, "user": user}


def build_kubeconfig(
    cluster: ClusterEntry, user: UserEntry, *, context_name: str | None = None, namespace: str | None = None
) -> dict[str, Any]:
    check_name(cluster.name, what="cluster name")
    check_name(user.name, what="user name")
    context_name = context_name or f"{user.name}@{cluster.name}"
    context: dict[str, Any] = {"cluster": cluster.name, "user": user.name}
    if namespace:
        context["namespace"] = check_name(namespace, what="namespace")
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster.as_dict()],
        "contexts": [{"name": context_name, "context": context}],
        "current-context": context_name,
        "preferences": {},
        "users": [user.as_dict()],
    }


def dump_kubeconfig(config: dict[str, Any]) -> bytes:
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False).encode()


def write_kubeconfig(path: Path, config: dict[str, Any]) -> Path:
    """Kubeconfigs carry credentials: written 0600, atomically."""
    return atomic_write(path, dump_kubeconfig(config), 0o600)


def load_kubeconfig(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a kubeconfig (top level is not a mapping)")
    return data
