"""The file layer: atomic replacement under an injected crash, permission bits, no plain writes."""

from __future__ import annotations

import datetime as dt
import os
import re
import stat
from pathlib import Path

import pytest

from pki.keys import generate_private_key, load_private_key_pem
from pki.store import (
    CERT_MODE,
    DIR_MODE,
    KEY_MODE,
    SYNCFS_MIN_FILES,
    PendingFile,
    atomic_write,
    atomic_write_many,
    backup_files,
    ensure_dir,
    write_private_key,
)
from tests.components.support import is_ci
from tests.crash import Crash, crash_at

REPO = Path(__file__).resolve().parents[2]


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_crash_between_write_and_rename_keeps_the_old_file(tmp_path: Path) -> None:
    target = atomic_write(tmp_path / "ca.key", b"old key", KEY_MODE)
    with crash_at(1), pytest.raises(Crash):  # power cut between write and rename
        atomic_write(target, b"new key", KEY_MODE)
    assert target.read_bytes() == b"old key"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ca.key"]  # no temp file left behind


def test_crash_in_a_batch_keeps_every_old_file(tmp_path: Path) -> None:
    key, cert = atomic_write(tmp_path / "a.key", b"k1"), atomic_write(tmp_path / "a.crt", b"c1", CERT_MODE)
    with crash_at(1), pytest.raises(Crash):
        atomic_write_many([PendingFile(key, b"k2", KEY_MODE), PendingFile(cert, b"c2", CERT_MODE)])
    assert (key.read_bytes(), cert.read_bytes()) == (b"k1", b"c1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.crt", "a.key"]


def test_crash_while_writing_leaves_no_temp_file(tmp_path: Path) -> None:
    with crash_at(1, os, "fsync"), pytest.raises(Crash):
        atomic_write(tmp_path / "new.key", b"secret")
    assert list(tmp_path.iterdir()) == []


class _SyncCounter:
    """Stands in for os.fsync and syncfs(2): counts the calls, then does the real thing."""

    def __init__(self, real: object) -> None:
        self.real, self.calls = real, 0

    def __call__(self, fd: int) -> int:
        self.calls += 1
        assert callable(self.real)
        return int(self.real(fd) or 0)


def _batch(folder: Path, count: int) -> list[PendingFile]:
    return [PendingFile(folder / f"{n}.crt", f"cert {n}".encode(), CERT_MODE) for n in range(count)]


def test_a_batch_is_made_durable_by_one_syncfs_not_an_fsync_per_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pki import store

    if store._syncfs() is None:
        reason = "no syncfs(2) in this C library: every file is fsynced (the fallback)"
        if is_ci():  # CI runs on Linux, where a missing syncfs would mean the batch path is never taken
            pytest.fail(reason)
        pytest.skip(reason)
    syncfs, fsync = _SyncCounter(store._syncfs()), _SyncCounter(os.fsync)
    monkeypatch.setattr(store, "_syncfs", lambda: syncfs)
    monkeypatch.setattr("pki.store.os.fsync", fsync)
    written = atomic_write_many(_batch(tmp_path, 3 * SYNCFS_MIN_FILES))
    assert syncfs.calls == 1  # one file system
    assert fsync.calls == 1  # the directory, once
    assert [p.read_bytes() for p in written] == [f"cert {n}".encode() for n in range(3 * SYNCFS_MIN_FILES)]
    assert {mode_of(p) for p in written} == {CERT_MODE}


def test_a_few_files_are_fsynced_one_by_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pki import store

    syncfs, fsync = _SyncCounter(os.fsync), _SyncCounter(os.fsync)
    monkeypatch.setattr(store, "_syncfs", lambda: syncfs)
    monkeypatch.setattr("pki.store.os.fsync", fsync)
    atomic_write_many(_batch(tmp_path, SYNCFS_MIN_FILES - 1))
    assert (syncfs.calls, fsync.calls) == (0, SYNCFS_MIN_FILES - 1 + 1)  # each file, then the directory


def test_a_failed_syncfs_keeps_every_old_file_and_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pki import store

    old = atomic_write_many(_batch(tmp_path, SYNCFS_MIN_FILES))
    monkeypatch.setattr(store, "_syncfs", lambda: lambda _fd: -1)  # e.g. EIO on writeback
    with pytest.raises(OSError, match="syncfs"):
        atomic_write_many([PendingFile(p, b"new", CERT_MODE) for p in old])
    assert {p.read_bytes() for p in old} == {f"cert {n}".encode() for n in range(SYNCFS_MIN_FILES)}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in old)


def test_without_a_crash_the_new_content_replaces_the_old(tmp_path: Path) -> None:
    target = atomic_write(tmp_path / "f", b"old")
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new"


def test_modes_keys_0600_certs_0644_dirs_0700(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)  # a permissive umask must not widen what we create
    try:
        key = write_private_key(tmp_path / "a" / "b" / "x.key", generate_private_key())
        cert = atomic_write(tmp_path / "a" / "b" / "x.crt", b"cert", CERT_MODE)
    finally:
        os.umask(old_umask)
    assert mode_of(key) == KEY_MODE == 0o600
    assert mode_of(cert) == CERT_MODE == 0o644
    assert mode_of(tmp_path / "a") == mode_of(tmp_path / "a" / "b") == DIR_MODE == 0o700


def test_rewrite_narrows_a_too_wide_key_file(tmp_path: Path) -> None:
    path = tmp_path / "x.key"
    path.write_bytes(b"old")
    path.chmod(0o644)
    atomic_write(path, b"new", KEY_MODE)
    assert mode_of(path) == 0o600


def test_ensure_dir_leaves_existing_directories_alone(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    ensure_dir(tmp_path / "new")
    assert mode_of(tmp_path) == 0o755 and mode_of(tmp_path / "new") == 0o700


def test_backups_keep_content_layout_and_modes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    key = write_private_key(home / "pki" / "ca.key", generate_private_key())
    cert = atomic_write(home / "pki" / "ca.crt", b"cert", CERT_MODE)
    when = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    target = backup_files([key, cert, home / "pki" / "absent.key"], home / "backups", when, home)
    assert target == home / "backups" / "20300102T030405Z"
    load_private_key_pem((target / "pki" / "ca.key").read_bytes())
    assert mode_of(target / "pki" / "ca.key") == 0o600 and mode_of(target / "pki" / "ca.crt") == 0o644
    assert not (target / "pki" / "absent.key").exists()


# A write that bypasses pki.store (temp file + fsync + rename, mode set first) can leave half a
# key behind or a key readable by others. Appending logs is not a replacement and is allowed.
PLAIN_WRITE = re.compile(r"\.write_(text|bytes)\(|\bopen\([^)]*['\"][wx]b?['\"]|shutil\.copy")


def test_no_plain_file_writes_outside_the_store() -> None:
    offenders = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for package in ("pki", "authsvc")
        for path in sorted((REPO / package).rglob("*.py"))
        if path != REPO / "pki" / "store.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if PLAIN_WRITE.search(line)
    ]
    assert offenders == [], "write files through pki.store.atomic_write:\n" + "\n".join(offenders)
