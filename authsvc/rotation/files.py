"""The files a rotation changes: backups of what it replaces, certificates in files and kubeconfigs.

Every write is pki.store's (temp file beside the target, fsync, rename); a copy of the old
file goes to backups/<time>/ first (files outside the home under backups/<time>/external/).
"""

from __future__ import annotations

import datetime as dt
import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cryptography import x509

from authsvc.home.opened import Home
from authsvc.kubeconfig.documents import b64, current_entries, decoded, write_kubeconfig
from authsvc.rotation.facts import CertTarget, kubeconfig_targets, read_kubeconfig
from pki.errors import StoreError
from pki.keys import private_key_to_pem
from pki.store import PendingFile, atomic_write_many, backup_run_dir, load_certificates


class Backups:
    """Copies of what a run replaces, under backups/<time>/ (a file's first copy in a run wins)."""

    def __init__(self, home: Home, now: dt.datetime) -> None:
        self.home_root = home.root
        self.root = backup_run_dir(home.layout.backups_dir, now)

    def keep(self, paths: Iterable[Path], *, known: Mapping[Path, bytes] | None = None) -> None:
        """Copy each existing file (its content from `known` when the caller has just read it)."""
        copies = []
        for path in paths:
            target = self.root / self._relative(path)
            if target.exists():  # not a set of what was kept: memory stays flat over 10,000s of files
                continue
            try:
                mode = stat.S_IMODE(os.stat(path).st_mode)  # noqa: PTH116 - one syscall, no Path built
            except FileNotFoundError:
                continue
            data = (known or {}).get(path) or path.read_bytes()
            copies.append(PendingFile(target, data, mode))
        atomic_write_many(copies)

    def _relative(self, path: Path) -> Path:
        """Where under the run a file goes: its place in the home, or external/<absolute path>."""
        if path.is_relative_to(self.home_root):
            return path.relative_to(self.home_root)
        return Path("external", *path.parts[1:])


def read_certificate(target: CertTarget) -> x509.Certificate:
    """The certificate in the target's file or embedded in its kubeconfig (StoreError when missing)."""
    if not target.path.is_file():
        raise StoreError(f"{target.path} does not exist: restore it from backups/ (or run `authsvc init`)")
    if not target.in_kubeconfig:
        return load_certificates(target.path)[0]
    _, user = current_entries(read_kubeconfig(target.path), target.path)
    data = decoded(user, "client-certificate-data")
    if data is None:
        raise StoreError(f"{target.path}: the current user has no embedded client certificate")
    return x509.load_pem_x509_certificate(data)


def write_embedded(home: Home, path: Path, ca: str, cert_pem: bytes) -> None:
    """A kubeconfig's embedded client certificate replaced, and its CA data set to pki/<ca>.crt."""
    config = read_kubeconfig(path)
    cluster, user = current_entries(config, path)
    user["client-certificate-data"] = b64(cert_pem)
    cluster["certificate-authority-data"] = b64(home.layout.cert_path(ca).read_bytes())
    write_kubeconfig(path, config)


def sync_kubeconfig(home: Home, path: Path, backups: Backups) -> str:
    """Set a kubeconfig's CA data to pki/<ca>.crt (and, for the webhook's, its client certificate
    and key to the files'); written only when something differs."""
    target = next((t for t in kubeconfig_targets(home) if t.path in (path, home.root / path)), None)
    if target is None:
        raise StoreError(f"{path} is not a kubeconfig rotate keeps current")
    config = read_kubeconfig(target.path)
    cluster, user = current_entries(config, target.path)
    changed = _assign(cluster, "certificate-authority-data", b64(home.layout.cert_path(target.ca).read_bytes()))
    if target.client_file and target.client_name:
        cert = b64(home.layout.cert_path(target.client_name).read_bytes())
        if _assign(user, "client-certificate-data", cert):
            key_file = home.layout.key_path(target.client_name)
            key = home.secrets.load_private_key(key_file, what="webhook client key", encrypt=False)
            user["client-key-data"] = b64(private_key_to_pem(key))  # in clear: the API server cannot decrypt
            changed = True
    if not changed:
        return "already current"
    backups.keep([target.path])
    write_kubeconfig(target.path, config)
    return f"rewrote {target.path.name}"


def _assign(entry: dict[str, Any], key: str, value: str) -> bool:
    """Set entry[key] = value; True when that changed it."""
    if entry.get(key) == value:
        return False
    entry[key] = value
    return True
