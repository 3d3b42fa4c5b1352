"""Where things live in a home: paths only, no I/O (see the package docstring for the tree)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# The home: --home, else $AUTHSVC_HOME, else ./authsvc-data.
HOME_ENV = "AUTHSVC_HOME"
DEFAULT_HOME = "authsvc-data"
CONFIG_NAME = "authsvc.yaml"
DATABASE_NAME = "authsvc.db"


def resolve_home(option: str | None, environ: Mapping[str, str]) -> Path:
    return Path(option or environ.get(HOME_ENV) or DEFAULT_HOME)


def pki_path(root: Path, name: str, suffix: str) -> Path:
    """kubeadm's naming: `ca` → pki/ca.crt, `etcd/ca` → pki/etcd/ca.crt, `sa` → pki/sa.key."""
    return root / "pki" / f"{name}.{suffix}"


@dataclass(frozen=True, slots=True)
class HomeLayout:
    root: Path
    config_path: Path

    @classmethod
    def at(cls, root: Path, config_path: Path | None = None) -> HomeLayout:
        return cls(root, config_path or root / CONFIG_NAME)

    def path(self, relative: str | Path) -> Path:
        return self.root / relative

    def cert_path(self, name: str) -> Path:
        return pki_path(self.root, name, "crt")

    def key_path(self, name: str) -> Path:
        return pki_path(self.root, name, "key")

    def crl_path(self, name: str) -> Path:
        return pki_path(self.root, name, "crl")

    @property
    def issued_dir(self) -> Path:
        return self.root / "issued"

    @property
    def backups_dir(self) -> Path:
        return self.root / "backups"

    @property
    def database_file(self) -> Path:
        return self.root / DATABASE_NAME
