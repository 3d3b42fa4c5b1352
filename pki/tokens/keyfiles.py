"""The private halves of signing keys, in kubeadm's file names.

`pki/sa.key` is the active key (what kube-apiserver's --service-account-signing-key-file
reads), `pki/sa-next.key` the prepared one, and `pki/sa.pub` the PEM bundle of every
published public key (--service-account-key-file). Writes are atomic and keys 0600.

The keys are written in clear even when the home encrypts its CA keys at rest:
kube-apiserver and kube-controller-manager read sa.key and cannot decrypt it. A key that an
older release wrote encrypted is still read, with the passphrase asked for only then.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pki.errors import KeyUnavailable, StoreError
from pki.keys import PrivateKey, is_encrypted_pem, load_private_key_pem
from pki.store import CERT_MODE, atomic_write, backup_files, read_private_key_file, write_private_key
from pki.tokens.kid import kid_for


@dataclass(frozen=True, slots=True)
class SigningKeyFiles:
    active_key: Path
    next_key: Path
    public_bundle: Path
    # The passphrase of a key file encrypted at rest (written by an older release), asked for
    # only when one is: a passphrase command then runs once, and never for clear keys.
    passphrase: Callable[[], bytes | None] | None = None
    # Replaced files are copied to <backups>/<time>/<path relative to home> first.
    backups: Path | None = None
    home: Path | None = None

    @classmethod
    def in_pki_dir(cls, pki_dir: Path, *, passphrase: bytes | None = None) -> SigningKeyFiles:
        return cls(pki_dir / "sa.key", pki_dir / "sa-next.key", pki_dir / "sa.pub", lambda: passphrase)

    def load(self, path: Path) -> PrivateKey:
        """KeyUnavailable when the file is missing, unreadable or too open (pki.store.key_mode_problem):
        nothing can be signed until it is fixed, and /login says so (503) instead of failing."""
        try:
            data = read_private_key_file(path, what="signing key")
        except StoreError as e:
            raise KeyUnavailable(str(e)) from e
        passphrase = self.passphrase() if self.passphrase is not None and is_encrypted_pem(data) else None
        # The home's own key (0600, checked above; an imported one was checked on its way in):
        # trusted, so an RSA sa.key costs ~0.05 ms to load instead of OpenSSL's ~32 ms check,
        # on every `token create` and every server start.
        return load_private_key_pem(data, passphrase, source=f"signing key {path}", trusted=True)

    def load_active(self, expected_kid: str) -> PrivateKey:
        """sa.key, checked to be the inventory's active key (finishing an interrupted activation)."""
        if not self.active_key.exists():
            raise KeyUnavailable(f"signing key {self.active_key} does not exist: run `authsvc init` to create it")
        key = self.load(self.active_key)
        if kid_for(key.public_key()) == expected_kid:
            return key
        if self.next_key.exists() and kid_for(self.load(self.next_key).public_key()) == expected_kid:
            # The inventory switched to the prepared key but the rename did not happen: finish it.
            self.promote_next(None)
            return self.load(self.active_key)
        raise KeyUnavailable(
            f"{self.active_key} holds key {kid_for(key.public_key())}, but the active signing key is "
            f"{expected_kid}: copy the matching sa.key from the home that rotated it"
        )

    def write_active(self, key: PrivateKey) -> Path:
        return write_private_key(self.active_key, key)  # in clear: see the module docstring

    def write_next(self, key: PrivateKey) -> Path:
        return write_private_key(self.next_key, key)

    def promote_next(self, now: dt.datetime | None) -> None:
        """sa-next.key becomes sa.key in one rename (the old files are backed up first when `now` is given)."""
        if now is not None and self.backups is not None and self.home is not None:
            backup_files([self.active_key, self.public_bundle], self.backups, now, self.home)
        os.replace(self.next_key, self.active_key)  # noqa: PTH105 - one atomic rename, as atomic_write does

    def write_bundle(self, pem: bytes) -> Path:
        return atomic_write(self.public_bundle, pem, CERT_MODE)
