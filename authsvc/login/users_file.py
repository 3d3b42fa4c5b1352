"""The static users file: logins for small clusters without a directory.

In the spirit of kube-apiserver's removed `--basic-auth-file` (password,user,uid,"groups"),
but the first column is an argon2id hash (argon2-cffi), never a password:

    # authsvc users file: argon2 hash,user,uid,"group1,group2"
    $argon2id$v=19$m=65536,t=3,p=4$...,alice,2d1c...,"dev,ops"

`authsvc users add|passwd|remove|list` manage it (written atomically, mode 0600). The server
re-reads it when it changes (size, mtime or inode differ), so edits apply without a restart.
A file that cannot be parsed makes the backend unavailable (fail closed), it is not skipped.

A user's groups share one field, joined by GROUP_SEPARATOR: a group name holding it would be
read back as several groups (`dev,system:masters` as `dev` and `system:masters`), so no
writer of the file accepts one. A file that already lists such groups (by hand, or from an
older authsvc) is read as the format says; the signing policy then refuses the privileged
ones at /login and at review time, and `authsvc users list` names them.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import secrets
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError

from authsvc.errors import BackendUnavailable, InvalidInput
from pki.names import check_name
from pki.store import atomic_write

log = logging.getLogger(__name__)

HEADER = '# authsvc users file: argon2 hash,user,uid,"group1,group2" (manage with `authsvc users`)\n'
USERS_FILE_MODE = 0o600
# Between the groups of the fourth field. The CSV layer quotes every other character (quotes
# included); white space around a group is trimmed on reading, and check_name refuses it.
GROUP_SEPARATOR = ","


@dataclass(frozen=True, slots=True)
class StaticUser:
    username: str
    uid: str
    groups: tuple[str, ...]
    password_hash: str

    def public(self) -> dict[str, object]:
        """What `authsvc users list` shows: everything but the hash."""
        return {"user": self.username, "uid": self.uid, "groups": list(self.groups)}


@cache
def hasher() -> PasswordHasher:
    # argon2-cffi's defaults are RFC 9106's second recommended profile (argon2id, 64 MiB, t=3).
    return PasswordHasher()


def hash_password(password: str, password_hasher: PasswordHasher | None = None) -> str:
    if not password:
        raise InvalidInput("the password must not be empty")
    return (password_hasher or hasher()).hash(password)


def decoy_hash(like: str | None = None) -> str:
    """A hash of a random password, with the parameters of `like` (a hash from the file):
    verified for unknown users, so that they cost what a known user costs."""
    password_hasher = hasher()
    if like is not None:
        with contextlib.suppress(InvalidHashError):
            password_hasher = PasswordHasher.from_parameters(extract_parameters(like))
    return password_hasher.hash(secrets.token_urlsafe(16))


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return bool(hasher().verify(password_hash, password))
    except InvalidHashError:
        log.error("users file: an entry has a malformed password hash; refusing it")
        return False
    except VerificationError:
        return False


# -- the file format ------------------------------------------------------------------------


def check_groups_field(username: str, groups: Sequence[str]) -> None:
    """Raise InvalidInput unless every group reads back from the file as itself."""
    for group in groups:
        if GROUP_SEPARATOR in group:
            raise InvalidInput(
                f"group {group!r} of user {username!r} contains {GROUP_SEPARATOR!r}, which separates groups "
                "in the users file: give each group its own --group"
            )


def parse_users(text: str, *, source: str = "users file") -> list[StaticUser]:
    """Parse the CSV text; raises ValueError naming the line for anything malformed."""
    users: list[StaticUser] = []
    seen: set[str] = set()
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or row[0].lstrip().startswith("#"):
            continue
        if len(row) not in (3, 4):
            raise InvalidInput(f'{source} line {number}: expected hash,user,uid[,"groups"], got {len(row)} fields')
        password_hash, username, uid = (field.strip() for field in row[:3])
        groups = tuple(g.strip() for g in row[3].split(GROUP_SEPARATOR) if g.strip()) if len(row) == 4 else ()
        if not password_hash.startswith("$argon2"):
            raise InvalidInput(f"{source} line {number}: the first field must be an argon2 hash, not a password")
        try:
            check_name(username, what="user name")
            for group in groups:
                check_name(group, what="group")
        except ValueError as e:
            raise InvalidInput(f"{source} line {number}: {e}") from None
        if username in seen:
            raise InvalidInput(f"{source} line {number}: user {username!r} is listed twice")
        seen.add(username)
        users.append(StaticUser(username, uid, groups, password_hash))
    return users


def render_users(users: Iterable[StaticUser]) -> str:
    """The file's text. Raises ValueError for a group the file cannot hold (check_groups_field)."""
    out = io.StringIO()
    out.write(HEADER)
    writer = csv.writer(out, lineterminator="\n")
    for user in users:
        check_groups_field(user.username, user.groups)
        writer.writerow([user.password_hash, user.username, user.uid, GROUP_SEPARATOR.join(user.groups)])
    return out.getvalue()


def read_users(path: Path) -> list[StaticUser]:
    """The users in `path` ([] when it does not exist). Raises InvalidInput when it is malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    try:
        return parse_users(text, source=str(path))
    except ValueError as e:
        raise InvalidInput(str(e)) from None


def write_users(path: Path, users: Sequence[StaticUser]) -> Path:
    return atomic_write(path, render_users(users).encode("utf-8"), USERS_FILE_MODE)


# -- the server side ------------------------------------------------------------------------


class UsersFile:
    """The users in a file, re-read when it changes. Thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._users: dict[str, StaticUser] = {}
        self._decoy_hash: str | None = None

    def lookup(self, username: str) -> StaticUser | None:
        """Raises BackendUnavailable when the file exists but cannot be read or parsed."""
        return self._current().get(username)

    def verify(self, username: str, password: str) -> tuple[bool, StaticUser | None]:
        """(user known, the user if the password is right). Unknown users cost one argon2 verify too."""
        user = self.lookup(username)
        if user is None:
            verify_password(self._decoy(), password)
            return False, None
        if not verify_password(user.password_hash, password):
            return True, None
        return True, user

    def _current(self) -> dict[str, StaticUser]:
        stamp = self._stat()
        with self._lock:
            if stamp != self._stamp:
                self._users = self._load() if stamp is not None else {}
                self._stamp = stamp
                self._decoy_hash = None
            return self._users

    def _decoy(self) -> str:
        decoy = self._decoy_hash
        if decoy is None:
            sample = next(iter(self._users.values()), None)
            decoy = self._decoy_hash = decoy_hash(sample.password_hash if sample else None)
        return decoy

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise BackendUnavailable(f"cannot read the users file {self.path}: {e.strerror}") from None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _load(self) -> dict[str, StaticUser]:
        try:
            users = parse_users(self.path.read_text(encoding="utf-8"), source=str(self.path))
        except (OSError, ValueError, UnicodeDecodeError) as e:
            log.error("users file %s is unusable, refusing its logins until it is fixed: %s", self.path, e)
            raise BackendUnavailable(f"the users file {self.path} is unusable: {e}") from None
        log.info("loaded %d users from %s", len(users), self.path)
        return {u.username: u for u in users}
