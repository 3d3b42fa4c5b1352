"""Private keys at rest: `authsvc keys encrypt|decrypt`, and what `pki check` says about them.

The rule (which keys are encrypted, and why the others stay in clear) is
authsvc/home/keys_at_rest.py. `encrypt` makes the home follow it after a passphrase was
configured; `decrypt` undoes it before the passphrase setting is removed (or to hand a key to a
program that cannot decrypt). Both compute and check every new file before writing any: the new
PEM is read back and must hold the same key. The old files are copied to backups/<time>/ first,
then each file is replaced atomically (pki.store). The passphrase is never printed or logged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from authsvc.errors import ConfigError, UsageError
from authsvc.home.keys_at_rest import HomeKey, home_keys
from authsvc.home.opened import Home
from pki.check import Finding, Severity
from pki.errors import KeyMaterialError, PKIError
from pki.keys import PASSPHRASE_SETTINGS, is_encrypted_pem, keys_match, load_private_key_pem, private_key_to_pem
from pki.store import KEY_MODE, PendingFile, atomic_write_many, backup_files, read_private_key_file


@dataclass
class KeyConversion:
    changed: list[HomeKey] = field(default_factory=list)
    kept_clear: list[HomeKey] = field(default_factory=list)  # encrypt: keys that stay in clear, and why
    already: list[HomeKey] = field(default_factory=list)  # already as asked
    backup: Path | None = None


def encrypt_keys(home: Home, names: Sequence[str] = (), *, dry_run: bool = False) -> KeyConversion:
    """Encrypt, with the configured passphrase, every key the rule encrypts (or the named ones)."""
    if not home.settings.pki.passphrase_configured:
        raise ConfigError(f"`keys encrypt` needs a passphrase: set {PASSPHRASE_SETTINGS} in authsvc.yaml first")
    result = KeyConversion()
    keys = _chosen(home, names)
    for key in keys:
        if not key.encrypt:
            if names:
                raise UsageError(f"pki/{key.name}.key stays in clear: {key.why_clear}")
            result.kept_clear.append(key)
    wanted = [k for k in keys if k.encrypt]
    passphrase = home.secrets.key_passphrase if not dry_run else None
    pending = []
    for key in wanted:
        data = read_private_key_file(key.path, what=f"{key.name} key")
        if is_encrypted_pem(data):
            result.already.append(key)
            continue
        result.changed.append(key)
        if not dry_run:
            pending.append(PendingFile(key.path, _converted(data, None, passphrase, key.path), KEY_MODE))
    _write(home, pending, result)
    return result


def decrypt_keys(home: Home, names: Sequence[str] = (), *, dry_run: bool = False) -> KeyConversion:
    """Write every encrypted key of the home (or the named ones) in clear, decrypted with the passphrase."""
    result = KeyConversion()
    pending = []
    for key in _chosen(home, names):
        data = read_private_key_file(key.path, what=f"{key.name} key")
        if not is_encrypted_pem(data):
            result.already.append(key)
            continue
        result.changed.append(key)
        if not dry_run:
            passphrase = home.secrets.key_passphrase
            if passphrase is None:
                raise ConfigError(
                    f"pki/{key.name}.key is encrypted: `keys decrypt` needs its passphrase in {PASSPHRASE_SETTINGS}"
                )
            pending.append(PendingFile(key.path, _converted(data, passphrase, None, key.path), KEY_MODE))
    _write(home, pending, result)
    return result


def _chosen(home: Home, names: Sequence[str]) -> list[HomeKey]:
    keys = home_keys(home.layout.path("pki"), home.settings)
    if not names:
        return keys
    by_name = {k.name: k for k in keys}
    unknown = [n for n in names if n.removesuffix(".key") not in by_name]
    if unknown:
        raise UsageError(f"no key {unknown[0]!r} in {home.layout.path('pki')} (names: {', '.join(by_name)})")
    return [by_name[n.removesuffix(".key")] for n in names]


def _converted(data: bytes, old: bytes | None, new: bytes | None, path: Path) -> bytes:
    """The key in `data` (readable with `old`) written with `new`, read back and checked to be the same key."""
    key = load_private_key_pem(data, old, source=str(path), trusted=True)
    pem = private_key_to_pem(key, new)
    if not keys_match(load_private_key_pem(pem, new, source=str(path), trusted=True), key.public_key()):
        raise KeyMaterialError(f"{path}: the converted key does not read back as the same key; nothing written")
    return pem


def _write(home: Home, pending: list[PendingFile], result: KeyConversion) -> None:
    if not pending:
        return
    now = home.clock()
    result.backup = backup_files([p.path for p in pending], home.layout.backups_dir, now, relative_to=home.root)
    atomic_write_many(pending)


# --- pki check ---------------------------------------------------------------------------------


def key_findings(home: Home) -> list[Finding]:
    """Keys whose state at rest does not match the settings (pki.key_passphrase_*, pki.in_place)."""
    configured = home.settings.pki.passphrase_configured
    findings = []
    for key in home_keys(home.layout.path("pki"), home.settings):
        rel = f"{key.name}.key"
        try:
            data = key.path.read_bytes()
        except OSError:
            continue  # the file audit reports what cannot be read
        encrypted = is_encrypted_pem(data)
        problem = _key_problem(home, key, data, encrypted=encrypted, configured=configured)
        if problem:
            findings.append(Finding("key-at-rest", rel, Severity.ERROR, problem))
    return findings


def _key_problem(home: Home, key: HomeKey, data: bytes, *, encrypted: bool, configured: bool) -> str:
    if encrypted and not key.encrypt:
        return f"encrypted, but {key.why_clear} and cannot decrypt it: run `authsvc keys decrypt {key.name}`"
    if encrypted and not configured:
        return f"encrypted, but no passphrase is configured ({PASSPHRASE_SETTINGS}): authsvc cannot sign with it"
    if not encrypted and key.encrypt and configured:
        return "in clear, but a key passphrase is configured: run `authsvc keys encrypt`"
    if encrypted:
        try:
            load_private_key_pem(data, home.secrets.key_passphrase, source=key.name, trusted=True)
        except ConfigError as e:
            return f"cannot check it: {e}"
        except PKIError:
            return "does not decrypt with the configured passphrase"
    return ""
