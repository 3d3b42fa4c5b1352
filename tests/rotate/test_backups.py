"""backups/<time>/ runs hold the keys and certificates rotations replaced: `authsvc rotate` deletes
those older than `rotation.retention`, and nothing else under backups/."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from pki.clock import FixedClock
from pki.store import backup_run_dir, backup_runs_before
from tests.rotate.support import DAY, SCENARIO_DAY, T0, busy_home, copy_home
from tests.rotate.test_cli import rotate_json

RUN_AT = T0 + SCENARIO_DAY * DAY
RETENTION = 90 * DAY  # rotation.retention's default


@pytest.fixture
def rotated(rotate_template: Path, tmp_path: Path) -> Path:
    """A busy home after one rotate run at RUN_AT (which renewed files, so left a backup run)."""
    root = tmp_path / "home"
    busy_home(copy_home(rotate_template, root, FixedClock(T0)))
    code, _ = rotate_json(root, now=RUN_AT.isoformat())
    assert code in (0, 3)
    assert backup_run_dir(root / "backups", RUN_AT).is_dir()
    return root


def prune_actions(report: dict[str, object]) -> list[dict[str, str]]:
    return [a for a in report["actions"] if a["kind"] == "prune-backups"]  # type: ignore[union-attr,index,misc]


def test_a_backup_run_older_than_the_retention_is_deleted_and_nothing_else(rotated: Path, tmp_path: Path) -> None:
    backups = rotated / "backups"
    (backups / "README.txt").write_text("the operator's notes")
    (backups / "manual-copy").mkdir()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "keep.key").write_text("not authsvc's")
    (backups / "20300101T000000Z").symlink_to(outside)  # named like a run, but a symlink
    later = RUN_AT + RETENTION + DAY
    code, report = rotate_json(rotated, now=later.isoformat())
    assert code in (0, 3)
    [action] = prune_actions(report)
    assert action["status"] == "done" and "deleted 1 backup runs" in action["detail"]
    assert not backup_run_dir(backups, RUN_AT).exists()
    assert (backups / "README.txt").read_text() == "the operator's notes"
    assert (backups / "manual-copy").is_dir()
    assert (outside / "keep.key").read_text() == "not authsvc's"


def test_a_backup_run_inside_the_retention_is_kept(rotated: Path) -> None:
    code, report = rotate_json(rotated, now=(RUN_AT + RETENTION - DAY).isoformat())
    assert code in (0, 3)
    assert prune_actions(report) == []
    assert backup_run_dir(rotated / "backups", RUN_AT).is_dir()


def test_a_dry_run_only_plans_the_deletion(rotated: Path) -> None:
    code, report = rotate_json(rotated, "--dry-run", now=(RUN_AT + RETENTION + DAY).isoformat())
    assert code in (0, 3)
    assert len(prune_actions(report)) == 1
    assert backup_run_dir(rotated / "backups", RUN_AT).is_dir()


def test_only_run_directories_count_as_runs(tmp_path: Path) -> None:
    root = tmp_path / "backups"
    for name in ("20300101T000000Z", "20300301T000000Z", "notes", "2030-01-01"):
        (root / name).mkdir(parents=True)
    (root / "20300102T000000Z").write_text("a file named like a run")
    cutoff = dt.datetime(2030, 2, 1, tzinfo=dt.UTC)
    assert backup_runs_before(root, cutoff) == ("20300101T000000Z",)
    shutil.rmtree(root)
    assert backup_runs_before(root, cutoff) == ()  # no backups/ yet
