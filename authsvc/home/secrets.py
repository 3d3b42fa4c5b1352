"""Secrets named in the configuration (a file or an environment variable), read once.

The key passphrase (`pki.key_passphrase_file` / `_env`) and the database URL
(`database.url_file` / `_env`, else `database.url`, else SQLite in the home).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from pathlib import Path

from authsvc.errors import ConfigError
from authsvc.home.layout import HomeLayout
from authsvc.settings import Settings


def read_secret(
    *, file: str | None, env: str | None, environ: Mapping[str, str], base: Path, what: str
) -> bytes | None:
    """Resolve a secret named in config (a file or an environment variable), once, at start."""
    if file:
        path = base / file
        try:
            return path.read_bytes().strip()
        except OSError as e:
            raise ConfigError(f"cannot read {what} file {path}: {e.strerror}") from None
    if env:
        value = environ.get(env)
        if not value:
            raise ConfigError(f"environment variable {env} (the {what}) is not set")
        return value.encode()
    return None


class HomeSecrets:
    def __init__(self, settings: Settings, layout: HomeLayout, environ: Mapping[str, str]) -> None:
        self.settings = settings
        self.layout = layout
        self.environ = environ

    @cached_property
    def key_passphrase(self) -> bytes | None:
        pki = self.settings.pki
        return read_secret(
            file=pki.key_passphrase_file,
            env=pki.key_passphrase_env,
            environ=self.environ,
            base=self.layout.root,
            what="key passphrase",
        )

    @cached_property
    def database_url(self) -> str:
        db = self.settings.database
        secret = read_secret(
            file=db.url_file, env=db.url_env, environ=self.environ, base=self.layout.root, what="database URL"
        )
        if secret:
            return secret.decode()
        return db.url or f"sqlite:///{self.layout.database_file}"
