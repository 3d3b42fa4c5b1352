"""Kubeconfig documents (clientcmd v1 `Config`), built as data and emitted by a YAML library.

Nothing here pastes strings into YAML: names that reach the file go through the YAML
emitter, and are validated first (`pki.names.check_name`).

Merging follows kubectl's rules for one file (clientcmd `ModifyConfig`): entries with other
names are left exactly as they were, and the file is locked with kubectl's own lock file
(`<file>.lock`, created exclusively) while it is read, changed and written back.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from authsvc.errors import Conflict, InvalidInput
from pki.errors import StoreError
from pki.names import check_name
from pki.store import atomic_write

SECTIONS = ("clusters", "users", "contexts")
# The kind of each section's entries, for messages ("user 'alice'").
_ENTRY_KIND = {"clusters": "cluster", "users": "user", "contexts": "context"}
EXEC_API_VERSION = "client.authentication.k8s.io/v1"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class KubeconfigConflict(Conflict):
    """The target kubeconfig already holds entries of the same names with other content."""


@dataclass(frozen=True, slots=True)
class ClusterEntry:
    name: str
    server: str
    ca_pem: bytes | None  # None: the client's system trust store (a server certificate from a public CA)

    def as_dict(self) -> dict[str, Any]:
        if self.ca_pem is None:
            return {"name": self.name, "cluster": {"server": self.server}}
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


def exec_user_config(
    *,
    login_url: str,
    ca_pem: bytes | None,
    username: str | None = None,
    install_hint: str,
    certificate: bool = False,
) -> dict[str, Any]:
    """A client-go exec credential plugin running `authsvc login` (client.authentication.k8s.io/v1).

    The login endpoint's CA travels inside the arguments (`--ca-data`), so a kubeconfig works
    against a private CA without anything installed in the system trust store. With
    `certificate`, the plugin hands kubectl a short-lived client certificate, not a token.
    See https://kubernetes.io/docs/reference/access-authn-authz/authentication/#client-go-credential-plugins
    """
    args = ["login", "--server", login_url]
    if ca_pem is not None:
        args += ["--ca-data", b64(ca_pem)]
    if username is not None:
        args += ["--username", username]
    if certificate:
        args += ["--credential", "certificate"]
    return {
        "apiVersion": EXEC_API_VERSION,
        "command": "authsvc",
        "args": args,
        # Prompt for a password when a terminal is there; a non-interactive run still works
        # while `authsvc login` has a cached, valid token.
        "interactiveMode": "IfAvailable",
        "provideClusterInfo": True,
        "installHint": install_hint,
    }


def browser_exec_config(
    *, issuer: str, client_id: str, ca_pem: bytes | None, username: str | None, install_hint: str
) -> dict[str, Any]:
    """The exec plugin for `authsvc login --browser`: the ID token of an OIDC sign-in in the
    browser, which kube-apiserver verifies itself (--oidc-issuer-url, --oidc-client-id)."""
    args = ["login", "--browser", "--issuer", issuer, "--client-id", client_id]
    if ca_pem is not None:
        args += ["--ca-data", b64(ca_pem)]
    if username is not None:
        args += ["--username", username]  # prefills the sign-in form (login_hint)
    return {
        "apiVersion": EXEC_API_VERSION,
        "command": "authsvc",
        "args": args,
        # The browser needs no terminal; the URL is printed on stderr for a browser elsewhere.
        "interactiveMode": "IfAvailable",
        "provideClusterInfo": True,
        "installHint": install_hint,
    }


def default_context(user: str, cluster: str) -> str:
    """The context a kubeconfig for `user` on `cluster` is named (kubeadm's `user@cluster`)."""
    return f"{user}@{cluster}"


def build_kubeconfig(
    cluster: ClusterEntry, user: UserEntry, *, context_name: str | None = None, namespace: str | None = None
) -> dict[str, Any]:
    check_name(cluster.name, what="cluster name")
    check_name(user.name, what="user name")
    context_name = context_name or default_context(user.name, cluster.name)
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
    # A wide line: long values (installHint) stay on one line instead of being folded.
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False, width=4096).encode()


def write_kubeconfig(path: Path, config: dict[str, Any]) -> Path:
    """Kubeconfigs carry credentials: written 0600, atomically."""
    return atomic_write(path, dump_kubeconfig(config), 0o600)


def empty_kubeconfig() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Config", "clusters": [], "contexts": [], "users": [], "preferences": {}}


def load_kubeconfig(path: Path, *, missing_ok: bool = False) -> dict[str, Any]:
    """Parse a kubeconfig; ValueError naming the file when it is not one."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if missing_ok:
            return empty_kubeconfig()
        raise
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise InvalidInput(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{path} is not a kubeconfig (top level is not a mapping)")
    for section in SECTIONS:
        entries = data.get(section)
        if entries is not None and not (
            isinstance(entries, list) and all(isinstance(e, dict) and isinstance(e.get("name"), str) for e in entries)
        ):
            raise InvalidInput(f"{path} is not a kubeconfig: {section} must be a list of named entries")
    return data


def current_entries(config: dict[str, Any], path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The `cluster` and `user` mappings the current context names (StoreError when it names none)."""
    contexts = {c["name"]: c.get("context") or {} for c in config.get("contexts") or []}
    context = contexts.get(config.get("current-context"), {})

    def entry(section: str, key: str) -> dict[str, Any]:
        for item in config.get(section) or []:
            if item["name"] == context.get(key) and isinstance(item.get(key), dict):
                return item[key]  # type: ignore[no-any-return]
        raise StoreError(f"{path}: the current context names no {key} of the file")

    return entry("clusters", "cluster"), entry("users", "user")


def decoded(entry: dict[str, Any], key: str) -> bytes | None:
    value = entry.get(key)
    return base64.b64decode(value) if isinstance(value, str) else None


def merge_conflicts(existing: dict[str, Any], incoming: dict[str, Any]) -> list[str]:
    """Entries of `incoming` whose name is taken in `existing` by an entry with other content."""
    found = []
    for section in SECTIONS:
        present = {e["name"]: e for e in existing.get(section) or []}
        for entry in incoming.get(section) or []:
            if entry["name"] in present and present[entry["name"]] != entry:
                found.append(f"{_ENTRY_KIND[section]} {entry['name']!r}")
    return found


def merge_kubeconfig(existing: dict[str, Any], incoming: dict[str, Any], *, force: bool = False) -> dict[str, Any]:
    """`incoming`'s clusters, users and contexts added to `existing`, which is not modified.

    Entries with other names stay as they are, in their order; an identical entry is kept
    once; a same-named entry with other content is a KubeconfigConflict unless `force`,
    which replaces it where it stands. current-context changes only when `existing` has none:
    adding someone's credentials must not silently switch what the file's owner talks to.
    """
    conflicts = merge_conflicts(existing, incoming)
    if conflicts and not force:
        raise KubeconfigConflict(f"the kubeconfig already has {', '.join(conflicts)}: use --force to replace")
    merged = copy.deepcopy(existing)
    merged.setdefault("apiVersion", "v1")
    merged.setdefault("kind", "Config")
    for section in SECTIONS:
        entries: list[dict[str, Any]] = merged.get(section) or []
        index = {e["name"]: i for i, e in enumerate(entries)}
        for entry in incoming.get(section) or []:
            if entry["name"] in index:
                entries[index[entry["name"]]] = copy.deepcopy(entry)
            else:
                index[entry["name"]] = len(entries)
                entries.append(copy.deepcopy(entry))
        merged[section] = entries
    if not merged.get("current-context") and incoming.get("current-context"):
        merged["current-context"] = incoming["current-context"]
    return merged


@contextlib.contextmanager
def kubeconfig_lock(path: Path) -> Iterator[None]:
    """Hold kubectl's lock on `path` (clientcmd's `<file>.lock`, created exclusively)."""
    lock = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        raise Conflict(
            f"{path} is locked by another writer ({lock} exists); if no kubectl or authsvc is running, remove the lock"
        ) from None
    os.close(fd)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
