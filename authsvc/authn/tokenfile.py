"""Static tokens in kube-apiserver's `--token-auth-file` format, reloaded when the file changes.

Each line is CSV: `token,user,uid,"group1,group2"` (the groups column is optional). The token
column may hold `sha256:<64 hex digits>` instead of the token, so the file need not contain it.
As in kube-apiserver, blank tokens are skipped and a later duplicate replaces an earlier one.

Tokens are looked up by their SHA-256, never by their text, and the digest is compared with
hmac.compare_digest: the time taken says nothing about how much of a token matched.
The file is stat()ed on each look-up (cheap) and re-read when its mtime, size or inode change.
An unreadable or malformed file fails closed: BackendUnavailable, until it is fixed.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import logging
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from authsvc.authn.base import ALL_KINDS, ANY_ISSUER, AuthenticatorBase, ChainContext
from authsvc.errors import BackendUnavailable, ConfigError, InvalidInput
from authsvc.identity import UserInfo
from authsvc.redact import token_digest

log = logging.getLogger(__name__)

HASHED = re.compile(r"sha256:([0-9a-fA-F]{64})")
NAME = "tokenfile"

Signature = tuple[int, int, int] | None  # (mtime_ns, size, inode); None: missing
TokenTable = Mapping[bytes, tuple[bytes, UserInfo]]
_NEVER_LOADED = (-1, -1, -1)


@dataclass(frozen=True, slots=True)
class TokenFileEntry:
    """One line of a token file. `token_column` is the token itself (what kube-apiserver's
    --token-auth-file needs) or `sha256:<hex>` (what authsvc's webhook also reads)."""

    token_column: str
    user: str
    uid: str
    groups: tuple[str, ...] = ()

    @property
    def hashed(self) -> bool:
        return HASHED.fullmatch(self.token_column) is not None

    @property
    def digest(self) -> bytes:
        return _digest_of(self.token_column)

    def public(self) -> dict[str, object]:
        """What `tokens static list` shows: never the token, a fingerprint of its hash."""
        return {
            "user": self.user,
            "uid": self.uid,
            "groups": list(self.groups),
            "stored": "sha256" if self.hashed else "plain",
            "token": self.digest.hex()[:12],
        }


def parse_token_file_entries(text: str, source: str = "token file") -> list[TokenFileEntry]:
    """The file's entries in order (blank tokens skipped, as kube-apiserver does); InvalidInput
    names the line of a malformed one."""
    entries: list[TokenFileEntry] = []
    for number, record in enumerate(csv.reader(io.StringIO(text), skipinitialspace=True), 1):
        if not record or record == [""]:
            continue
        if len(record) < 3:
            raise InvalidInput(
                f"{source} line {number}: needs at least 3 columns (token, user name, user uid), found {len(record)}"
            )
        token, user, uid = (field.strip() for field in record[:3])
        if not token:
            log.warning("%s line %d: empty token skipped", source, number)
            continue
        if not user:
            raise InvalidInput(f"{source} line {number}: the user name is empty")
        groups = tuple(g.strip() for g in record[3].split(",") if g.strip()) if len(record) > 3 else ()
        entries.append(TokenFileEntry(token, user, uid, groups))
    return entries


def parse_token_file(text: str, source: str = "token file") -> dict[bytes, tuple[bytes, UserInfo]]:
    """A token file's table: SHA-256 of the token -> (that digest, identity). InvalidInput names the line."""
    table: dict[bytes, tuple[bytes, UserInfo]] = {}
    for entry in parse_token_file_entries(text, source):
        digest = entry.digest
        if digest in table:
            log.warning("%s: a duplicate token (user %s) replaces an earlier line", source, entry.user)
        table[digest] = (digest, UserInfo(entry.user, entry.uid, entry.groups, backend=NAME))
    return table


def render_token_file(entries: Sequence[TokenFileEntry]) -> str:
    """The entries as kube-apiserver's CSV: `token,user,uid,"group1,group2"`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for entry in entries:
        groups = [",".join(entry.groups)] if entry.groups else []
        writer.writerow([entry.token_column, entry.user, entry.uid, *groups])
    return out.getvalue()


# A token file holds tokens (or their hashes): private.
TOKEN_FILE_MODE = 0o600


def read_token_file(path: Path) -> list[TokenFileEntry]:
    """The entries of `path` ([] when it does not exist); InvalidInput when it is malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return parse_token_file_entries(text, str(path))


def write_token_file(path: Path, entries: Sequence[TokenFileEntry]) -> None:
    """Replace `path` atomically (0600); the caller holds pki.store.exclusive_lock(path)."""
    from pki.store import atomic_write

    atomic_write(path, render_token_file(entries).encode("utf-8"), TOKEN_FILE_MODE)


def _digest_of(token_column: str) -> bytes:
    hashed = HASHED.fullmatch(token_column)
    return bytes.fromhex(hashed.group(1)) if hashed else token_digest(token_column)


def hash_token_column(token: str) -> str:
    """What to write in the token column instead of the token itself."""
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


class TokenFileAuthenticator(AuthenticatorBase):
    name = NAME
    # A static token is any string, a JWT-shaped one included (as kube-apiserver's token file).
    token_kinds = ALL_KINDS
    issuers = ANY_ISSUER

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._table: TokenTable = {}
        self._signature: Signature = _NEVER_LOADED
        self._failure: tuple[Signature, str] | None = None
        try:
            self._reload_if_changed()
        except BackendUnavailable as e:
            raise ConfigError(str(e)) from None

    def authenticate(self, token: str) -> UserInfo | None:
        digest = token_digest(token)
        entry = self._reload_if_changed().get(digest)
        # The dict lookup keys on a digest the caller cannot steer; the final check is constant-time.
        if entry is None or not hmac.compare_digest(entry[0], digest):
            return None
        return entry[1]

    def ready(self) -> bool:
        try:
            self._reload_if_changed()
        except BackendUnavailable:
            return False
        return True

    def _reload_if_changed(self) -> TokenTable:
        signature = self._stat()
        if signature == self._signature:
            return self._table
        with self._lock:
            if signature != self._signature:
                if self._failure is not None and self._failure[0] == signature:
                    raise BackendUnavailable(self._failure[1])
                self._load(signature)
        return self._table

    def _stat(self) -> Signature:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _load(self, signature: Signature) -> None:
        try:
            table = parse_token_file(self.path.read_text(encoding="utf-8"), f"token file {self.path}")
        except (OSError, ValueError) as e:
            message = getattr(e, "strerror", None) or str(e)
            self._failure = (signature, f"token file {self.path} cannot be used: {message}; fix it")
            log.error("%s", self._failure[1])
            raise BackendUnavailable(self._failure[1]) from None
        self._table, self._signature, self._failure = table, signature, None
        log.info("token file %s loaded: %d tokens", self.path, len(table))


def build(context: ChainContext) -> TokenFileAuthenticator | None:
    path = context.settings.authn.tokenfile.path
    if not path:
        return None
    return TokenFileAuthenticator(context.home_root / path)
