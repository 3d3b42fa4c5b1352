"""The home directory: where authsvc keeps its config, PKI (kubeadm layout) and inventory.

<home>/authsvc.yaml        configuration
<home>/pki/ca.crt, ca.key  cluster CA (kubeadm names; front-proxy-ca, etcd/ca, sa.key ...)
<home>/authsvc.db          SQLite inventory (unless database.url is set)
<home>/issued/             certificates made by `certs create` / `certs sign`
<home>/backups/<time>/     what renewals and rotations replaced
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from authsvc.errors import HomeError
from authsvc.settings import CONFIG_NAME, Settings, load_settings, read_secret
from pki.ca import CertificateAuthority
from pki.clock import Clock, system_clock
from pki.inventory import Inventory
from pki.issuance import CertificateIssuer
from pki.store import load_certificate, load_certificates, load_private_key

if TYPE_CHECKING:
    from pki.tokens import TokenService

from authsvc.cli import DEFAULT_HOME, HOME_ENV  # one definition, in the light CLI module


def pki_path(root: Path, name: str, suffix: str) -> Path:
    """kubeadm's naming: `ca` → pki/ca.crt, `etcd/ca` → pki/etcd/ca.crt, `sa` → pki/sa.key."""
    return root / "pki" / f"{name}.{suffix}"


@dataclass
class Home:
    """A home directory plus what is loaded from it on demand (engine, CA, issuer)."""

    root: Path
    settings: Settings
    config_path: Path
    clock: Clock = system_clock
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    @classmethod
    def open(
        cls,
        root: Path,
        config_path: Path | None = None,
        *,
        clock: Clock = system_clock,
        environ: Mapping[str, str] | None = None,
    ) -> Home:
        config = config_path or root / CONFIG_NAME
        if not root.is_dir():
            raise HomeError(f"home {root} does not exist: run `authsvc init --home {root}` first")
        return cls(root, load_settings(config), config, clock, dict(os.environ) if environ is None else environ)

    def path(self, relative: str | Path) -> Path:
        return self.root / relative

    def cert_path(self, name: str) -> Path:
        return pki_path(self.root, name, "crt")

    def key_path(self, name: str) -> Path:
        return pki_path(self.root, name, "key")

    @property
    def issued_dir(self) -> Path:
        return self.root / "issued"

    @property
    def backups_dir(self) -> Path:
        return self.root / "backups"

    @cached_property
    def key_passphrase(self) -> bytes | None:
        pki = self.settings.pki
        return read_secret(
            file=pki.key_passphrase_file,
            env=pki.key_passphrase_env,
            environ=self.environ,
            base=self.root,
            what="key passphrase",
        )

    @cached_property
    def database_url(self) -> str:
        db = self.settings.database
        secret = read_secret(
            file=db.url_file, env=db.url_env, environ=self.environ, base=self.root, what="database URL"
        )
        if secret:
            return secret.decode()
        return db.url or f"sqlite:///{self.root / 'authsvc.db'}"

    @cached_property
    def engine(self) -> Engine:
        # An empty database is migrated to head; one behind or newer than this code is refused
        # (one query when it is at head). authsvc/db/schema.py has the rules. Each caller imports only
        # the tables it queries (no table refers to another): `certs create` needs the inventory,
        # not the token, login and rotation tables with PyJWT and the PostgreSQL dialect.
        from authsvc.db.schema import open_engine

        return open_engine(self.database_url)

    @cached_property
    def inventory(self) -> Inventory:
        return Inventory(self.engine)

    @cached_property
    def token_service(self) -> TokenService:
        """Issues, verifies and revokes the tokens authsvc signs (keys: pki/sa.key, pki/sa.pub)."""
        from authsvc.tokens import build_token_service

        return build_token_service(self)

    def load_ca(self, name: str = "ca") -> CertificateAuthority:
        cert_file, key_file = self.cert_path(name), self.key_path(name)
        if not cert_file.exists():
            raise HomeError(f"CA certificate {cert_file} does not exist: run `authsvc init` first")
        certs = load_certificates(cert_file, what=f"{name} certificate")
        key = load_private_key(key_file, self.key_passphrase, what=f"{name} key", trusted=True)
        chain_file = pki_path(self.root, name, "chain.crt")
        # After a root, the file holds other roots (a CA rollover's trust bundle), not its chain.
        rest = tuple(certs[1:]) if certs[0].issuer != certs[0].subject else ()
        chain = tuple(load_certificates(chain_file)) if chain_file.exists() else rest
        return CertificateAuthority.load(certs[0], key, chain)

    def issuer(self, ca_name: str = "ca") -> CertificateIssuer:
        return CertificateIssuer(
            self.load_ca(ca_name),
            self.inventory,
            self.settings.pki.policy.to_policy(),
            self.clock,
            ca_name=ca_name,
        )


def resolve_home(option: str | None, environ: Mapping[str, str]) -> Path:
    return Path(option or environ.get(HOME_ENV) or DEFAULT_HOME)


__all__ = ["DEFAULT_HOME", "HOME_ENV", "Home", "load_certificate", "pki_path", "resolve_home"]
