"""The thin file layer: atomic writes with safe modes, PEM reads with clear errors.

Every write goes to a temporary file beside the target, is fsynced, then renamed over
it, so a crash leaves either the old file or the new one, never half of either.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import errno
import fcntl
import functools
import os
import secrets
import shutil
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pki.errors import StoreError
from pki.keys import PrivateKey, load_private_key_pem, private_key_to_pem

KEY_MODE = 0o600
CERT_MODE = 0o644
DIR_MODE = 0o700
# Permission bits a private key file must not have: none for group or others (OpenSSH's rule;
# key_mode_problem says when a group may read one).
GROUP_BITS, OTHERS_BITS = 0o070, 0o007
KEY_FORBIDDEN_BITS = GROUP_BITS | OTHERS_BITS


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `<path>.lock` (created 0600 beside it): read-modify-write runs on
    the same file take turns. Readers need no lock: every write is atomic."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, KEY_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def ensure_dir(path: Path, mode: int = DIR_MODE) -> Path:
    """Create `path` and every missing parent with `mode` (0700); existing directories are left alone."""
    missing = []
    current = path
    while not current.is_dir() and current != current.parent:
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        directory.mkdir(mode=mode, exist_ok=True)
    return path


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@dataclass(frozen=True, slots=True)
class PendingFile:
    """One file for `atomic_write_many`: where it goes, what it holds, its permission bits."""

    path: Path
    data: bytes
    mode: int = KEY_MODE


def atomic_write(path: Path, data: bytes, mode: int = KEY_MODE) -> Path:
    """Write `data` to `path` atomically with permission `mode` (set before any byte is written)."""
    return atomic_write_many([PendingFile(path, data, mode)])[0]


def atomic_write_many(files: Sequence[PendingFile]) -> list[Path]:
    """Write each file atomically: all temp files are written, then made durable (an fsync each, or
    for a batch one syncfs per file system: see SYNCFS_MIN_FILES), then renamed, then each
    directory is fsynced once (a key and its certificate cost one directory fsync, not two).

    A failure before the renames leaves every old file intact and no temp file behind. Each file is
    replaced atomically; the set is not a transaction (a crash between two renames keeps the second
    file old), so callers write the file others depend on (the key) first.
    """
    staged: list[tuple[str, Path]] = []
    directories: dict[Path, None] = {}
    try:
        for item in files:
            directory = item.path.parent
            if directory not in directories:
                ensure_dir(directory)
                directories[directory] = None
            staged.append((_write_temp(item), item.path))
        _make_durable([tmp for tmp, _ in staged], directories)
        for tmp, path in staged:
            os.replace(tmp, path)  # noqa: PTH105 - tests inject a crash here
    except BaseException:
        for tmp, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)  # noqa: PTH108
        raise
    for directory in directories:
        _fsync_dir(directory)
    return [path for _, path in staged]


def _write_temp(item: PendingFile) -> str:
    """Write `item` to a new temp file beside its target (mode set before any byte); its path.

    Not tempfile.mkstemp: its name generation costs more than creating the file on tmpfs, and a
    rotation writes thousands. O_EXCL with 96 random bits is the same guarantee.
    """
    tmp = f"{item.path.parent}/.{item.path.name}.{secrets.token_hex(12)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, item.mode)
        view = memoryview(item.data)
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        os.close(fd)
        os.unlink(tmp)  # noqa: PTH108
        raise
    os.close(fd)
    return tmp


# From this many files on, one syncfs(2) per file system replaces an fsync per file: a bulk
# writer (rotation renewing a thousand certificates, a batch of issuances) then pays a
# couple of journal commits per batch instead of one per file. Below it, fsync is cheaper:
# syncfs also flushes whatever else is dirty on that file system.
SYNCFS_MIN_FILES = 8


def _make_durable(paths: Sequence[str], directories: Iterable[Path]) -> None:
    """Every file in `paths` (all in `directories`) is on stable storage when this returns."""
    syncfs = _syncfs() if len(paths) >= SYNCFS_MIN_FILES else None
    if syncfs is None:
        for path in paths:
            _fsync_file(path)
        return
    by_device = {directory.stat().st_dev: directory for directory in directories}
    for directory in by_device.values():
        fd = os.open(directory, os.O_RDONLY)
        try:
            if syncfs(fd) != 0:
                err = ctypes.get_errno() or errno.EIO
                raise OSError(err, f"syncfs: {os.strerror(err)}", str(directory))
        finally:
            os.close(fd)


@functools.cache
def _syncfs() -> ctypes._NamedFuncPointer | None:
    """Linux's syncfs(2) from the C library, or None where there is none (then: fsync per file).
    CDLL(None): the symbols already loaded into this process, libc's among them (find_library
    would run ldconfig in a subprocess)."""
    try:
        function = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError, TypeError):
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return function


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_bytes(path: Path, *, what: str = "file") -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise StoreError(f"{what} {path} does not exist") from None
    except OSError as e:
        raise StoreError(f"cannot read {what} {path}: {e.strerror}") from e


def certs_to_pem(certs: Iterable[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def write_certificates(path: Path, certs: Iterable[x509.Certificate]) -> Path:
    return atomic_write(path, certs_to_pem(certs), CERT_MODE)


def write_private_key(path: Path, key: PrivateKey, passphrase: bytes | None = None) -> Path:
    return atomic_write(path, private_key_to_pem(key, passphrase), KEY_MODE)


def load_certificates(path: Path, *, what: str = "certificate") -> list[x509.Certificate]:
    data = read_bytes(path, what=what)
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as e:
        raise StoreError(f"{what} {path} is not a PEM certificate") from e
    return certs


def load_certificate(path: Path, *, what: str = "certificate") -> x509.Certificate:
    return load_certificates(path, what=what)[0]


def key_mode_problem(status: os.stat_result, path: Path) -> str | None:
    """Why a private key file with this status is too open to use, or None.

    OpenSSH's rule for private keys: a key file owned by the user reading it must be 0600 or
    stricter. A key owned by someone else may be readable by its group: that is how a key is
    handed to a service that must not change it (root:<service group> 0440 from a Kubernetes
    Secret with fsGroup, Debian's root:ssl-cert 0640). Access for others is refused whoever
    owns the file: every local user could read that key.
    """
    mode = stat.S_IMODE(status.st_mode)
    if mode & OTHERS_BITS:
        who = "others"
    elif mode & GROUP_BITS and status.st_uid == os.geteuid():
        who = "its group"
    else:
        return None
    rule = f"a private key must not be accessible to {who}"
    return f"permissions {mode:04o} for '{path}' are too open: {rule} (chmod 600 it)"


def read_private_key_file(path: Path, *, what: str = "private key") -> bytes:
    """The bytes of a private key file; StoreError when it is missing, unreadable or too open
    (key_mode_problem). The mode is that of the opened file: the file checked is the file read."""
    try:
        with path.open("rb") as handle:
            problem = key_mode_problem(os.fstat(handle.fileno()), path)
            if problem is None:
                return handle.read()
    except FileNotFoundError:
        raise StoreError(f"{what} {path} does not exist") from None
    except OSError as e:
        raise StoreError(f"cannot read {what} {path}: {e.strerror}") from e
    raise StoreError(problem)


def load_private_key(
    path: Path, passphrase: bytes | None = None, *, what: str = "private key", trusted: bool = False
) -> PrivateKey:
    """The key in `path` (read_private_key_file: refused when group or others may read it).

    `trusted`: a key in authsvc's own home (see load_private_key_pem)."""
    data = read_private_key_file(path, what=what)
    return load_private_key_pem(data, passphrase, source=f"{what} {path}", trusted=trusted)


# backups/<time>/: one directory per run that replaced files, named by the run's UTC time.
BACKUP_RUN_FORMAT = "%Y%m%dT%H%M%SZ"


def backup_run_dir(backup_root: Path, now: dt.datetime) -> Path:
    return backup_root / now.astimezone(dt.UTC).strftime(BACKUP_RUN_FORMAT)


def backup_runs_before(backup_root: Path, before: dt.datetime) -> tuple[str, ...]:
    """Names of the backup runs under `backup_root` taken before `before`, oldest first. Anything
    else there (a name that is no run time, a symlink, a file) is not ours and is left out."""
    runs = []
    for entry in backup_root.iterdir() if backup_root.is_dir() else ():
        try:
            taken = dt.datetime.strptime(entry.name, BACKUP_RUN_FORMAT).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
        if taken < before and entry.is_dir() and not entry.is_symlink():
            runs.append(entry.name)
    return tuple(sorted(runs))


def remove_backup_runs(backup_root: Path, runs: Iterable[str]) -> int:
    """Delete the named runs (re-checked: a run directory, not a symlink); how many were deleted."""
    removed = 0
    for name in runs:
        run = backup_root / name
        if run.parent == backup_root and run.is_dir() and not run.is_symlink():
            shutil.rmtree(run)
            removed += 1
    return removed


def backup_files(paths: Iterable[Path], backup_root: Path, now: dt.datetime, relative_to: Path) -> Path:
    """Copy `paths` (those that exist) under `backup_root/<time>/`, keeping their relative layout."""
    target = ensure_dir(backup_run_dir(backup_root, now))
    copies = [
        PendingFile(target / path.relative_to(relative_to), path.read_bytes(), stat.S_IMODE(path.stat().st_mode))
        for path in paths
        if path.exists()
    ]
    atomic_write_many(copies)
    return target


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """Files created inside (by libraries we do not control) are private to the owner."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)
