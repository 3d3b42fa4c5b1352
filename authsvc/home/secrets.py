"""Secrets named in the configuration (a file, an environment variable or a command), read once.

The key passphrase (`pki.key_passphrase_file` / `_env` / `_command`) and the database URL
(`database.url_file` / `_env`, else `database.url`, else SQLite in the home). A secret is read
on first use and kept for the life of the process: a command that prints the passphrase (a
secret manager's CLI) runs at most once per process, and never when nothing needs a key.

Keys of the home are read through `HomeSecrets.load_private_key`, which knows whether a key
is meant to be encrypted at rest (CA keys when a passphrase is configured) or in clear (keys
that other programs read): a clear CA key with a passphrase configured is refused with the
command that fixes it, an encrypted key is decrypted whatever it is (homes made before a key
was meant to be in clear still work).
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path

from authsvc.errors import ConfigError
from authsvc.home.layout import HomeLayout
from authsvc.settings import Settings
from pki.errors import KeyMaterialError
from pki.keys import PASSPHRASE_SETTINGS, PrivateKey, is_encrypted_pem, load_private_key_pem, private_key_to_pem
from pki.store import read_private_key_file

# A secret manager that does not answer within this long is reported, not waited for.
SECRET_COMMAND_TIMEOUT = 30.0


def read_secret(
    *,
    file: str | None,
    env: str | None,
    environ: Mapping[str, str],
    base: Path,
    what: str,
    command: Sequence[str] | None = None,
) -> bytes | None:
    """Resolve a secret named in config (a file, an environment variable or a command's output)."""
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
    if command:
        return run_secret_command(command, environ=environ, cwd=base, what=what)
    return None


def run_secret_command(command: Sequence[str], *, environ: Mapping[str, str], cwd: Path, what: str) -> bytes:
    """The secret a command prints on stdout (trailing newline removed). No shell: the program is
    looked up on PATH and gets the arguments as they are. Its output is never shown; a failure is
    one ConfigError naming the program, with the first line of what it said on stderr."""
    program = command[0]
    try:
        result = subprocess.run(  # the operator's own command, without a shell
            list(command),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            cwd=cwd if cwd.is_dir() else None,
            env=dict(environ),
            timeout=SECRET_COMMAND_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise ConfigError(f"cannot run the {what} command {program!r}: no such program (on PATH)") from None
    except PermissionError:
        raise ConfigError(f"cannot run the {what} command {program!r}: permission denied") from None
    except OSError as e:
        raise ConfigError(f"cannot run the {what} command {program!r}: {e.strerror}") from None
    except subprocess.TimeoutExpired:
        limit = f"{SECRET_COMMAND_TIMEOUT:g}s"
        raise ConfigError(f"the {what} command {program!r} did not finish within {limit}") from None
    if result.returncode != 0:
        said = _first_line(result.stderr)
        raise ConfigError(
            f"the {what} command {program!r} exited with status {result.returncode}" + (f": {said}" if said else "")
        )
    secret = result.stdout.rstrip(b"\r\n")
    if not secret:
        raise ConfigError(f"the {what} command {program!r} printed nothing on stdout")
    return secret


def _first_line(stderr: bytes) -> str:
    lines = stderr.decode(errors="replace").strip().splitlines()
    return lines[0][:200] if lines else ""


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
            command=pki.key_passphrase_command,
            environ=self.environ,
            base=self.layout.root,
            what="key passphrase",
        )

    def key_pem(self, key: PrivateKey, *, encrypt: bool) -> bytes:
        """PKCS#8 PEM of a key of the home: encrypted with the passphrase when `encrypt` (a key only
        authsvc reads) and a passphrase is configured, else in clear."""
        passphrase = self.key_passphrase if encrypt and self.settings.pki.passphrase_configured else None
        return private_key_to_pem(key, passphrase)

    def load_private_key(self, path: Path, *, what: str, encrypt: bool, trusted: bool = True) -> PrivateKey:
        """A key of the home (refused when group or others may read it: pki.store.key_mode_problem).

        `encrypt`: the key is meant to be encrypted at rest when a passphrase is configured (CA
        keys); in clear, it is refused then, with the command that encrypts it. An encrypted key is
        decrypted with the passphrase whatever `encrypt` says. Raises StoreError, KeyMaterialError,
        ConfigError (the passphrase cannot be read)."""
        data = read_private_key_file(path, what=what)
        source = f"{what} {path}"
        if is_encrypted_pem(data):
            passphrase = self.key_passphrase
            if passphrase is None:
                raise KeyMaterialError(
                    f"{source} is encrypted: set its passphrase in {PASSPHRASE_SETTINGS} "
                    "(or decrypt it with `authsvc keys decrypt` where the passphrase is set)"
                )
            return load_private_key_pem(data, passphrase, source=source, trusted=trusted)
        if encrypt and self.settings.pki.passphrase_configured:
            raise KeyMaterialError(
                f"{source} is not encrypted but a key passphrase is configured: run `authsvc keys encrypt` "
                f"(or remove {PASSPHRASE_SETTINGS})"
            )
        return load_private_key_pem(data, None, source=source, trusted=trusted)

    @cached_property
    def database_url(self) -> str:
        db = self.settings.database
        secret = read_secret(
            file=db.url_file, env=db.url_env, environ=self.environ, base=self.layout.root, what="database URL"
        )
        if secret:
            return secret.decode()
        return db.url or f"sqlite:///{self.layout.database_file}"


__all__ = ["HomeSecrets", "read_secret", "run_secret_command"]
