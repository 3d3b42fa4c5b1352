"""`authsvc rotate` through the real entry point: --dry-run changes nothing, exit codes 0/1/2/3,
the table and JSON reports."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from authsvc.home.opened import Home
from pki.clock import FixedClock
from tests.conftest import run_cli
from tests.rotate.support import DAY, SCENARIO_DAY, T0, busy_home, checksums, copy_home

NOW = (T0 + SCENARIO_DAY * DAY).isoformat()


@pytest.fixture(scope="module")
def scenario(rotate_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli") / "scenario"
    busy_home(copy_home(rotate_template, root, FixedClock(T0), rotation={"webhook_kubeconfig": "webhook.conf"}))
    return root


@pytest.fixture
def busy(scenario: Path, tmp_path: Path) -> Path:
    shutil.copytree(scenario, tmp_path / "home")
    return tmp_path / "home"


def rotate_json(home: Path, *args: str, now: str = NOW) -> tuple[int, dict[str, object]]:
    result = run_cli(["--now", now, "rotate", "-o", "json", *args], home=home)
    assert result.stdout, result.stderr
    return result.exit_code, json.loads(result.stdout)


def test_dry_run_changes_nothing_not_even_the_database(busy: Path) -> None:
    before = checksums(busy)
    code, report = rotate_json(busy, "--dry-run")
    assert code == 3  # dave's certificate: a human must act
    assert report["dryRun"] is True and report["summary"]["planned"] == 19  # type: ignore[index]
    assert {a["status"] for a in report["actions"]} == {"planned", "needs-human"}  # type: ignore[union-attr]
    assert checksums(busy) == before  # every file, authsvc.db included; no lock file, no WAL left behind
    code, _ = rotate_json(busy)  # the twin: the real run changes the home
    assert code == 3 and checksums(busy) != before


def test_a_dry_run_table_says_it_is_one(busy: Path) -> None:
    result = run_cli(["--now", NOW, "rotate", "--dry-run"], home=busy)
    assert result.exit_code == 3
    assert "apiserver" in result.stdout and "planned" in result.stdout
    assert result.stdout.rstrip().splitlines()[-1].startswith("dry run: planned ")


def test_exit_0_when_all_is_well(rhome: Home) -> None:
    result = run_cli(["--now", T0.isoformat(), "rotate"], home=rhome.root)
    assert (result.exit_code, result.stdout.strip()) == (0, "planned 0, done 0, failed 0, needs a human 0")


def test_exit_3_when_a_ca_expires_within_the_warning_window(home_copy: Callable[..., Home]) -> None:
    home = home_copy(rotation={"ca_warn_within": "3651d"})  # every 10-year CA is "within a year" now
    code, report = rotate_json(home.root, now=T0.isoformat())
    assert code == 3
    reasons = [a["reason"] for a in report["actions"] if a["status"] == "needs-human"]  # type: ignore[union-attr,index]
    assert any("authsvc ca rotate --phase prepare --ca ca" in r for r in reasons), reasons
    assert report["summary"] == {"planned": 0, "done": 0, "failed": 0, "needs_human": 4}  # four CAs


def test_exit_3_for_a_persons_certificate_near_expiry_and_it_is_not_renewed(busy: Path) -> None:
    code, report = rotate_json(busy)
    assert code == 3
    (human,) = [a for a in report["actions"] if a["status"] == "needs-human"]  # type: ignore[union-attr,index]
    assert "dave" in human["target"] and "not renewed automatically" in human["reason"]
    code, again = rotate_json(busy)
    assert code == 3 and again["summary"]["done"] == 0  # type: ignore[index]


def test_exit_1_on_a_failure_and_the_other_actions_still_run(busy: Path) -> None:
    (busy / "pki" / "apiserver.crt").unlink()
    code, report = rotate_json(busy)
    assert code == 1
    failed = [a for a in report["actions"] if a["status"] == "failed"]  # type: ignore[union-attr,index]
    assert [(a["target"], "does not exist" in a["detail"]) for a in failed] == [("apiserver", True)]
    assert report["summary"]["done"] >= 17  # type: ignore[index]


def test_exit_2_on_bad_usage(rhome: Home) -> None:
    result = run_cli(["rotate", "--renew-before", "soon"], home=rhome.root)
    assert result.exit_code == 2 and "invalid duration 'soon'" in result.stderr


def test_renew_before_widens_the_window(rhome: Home) -> None:
    now = (T0 + 200 * DAY).isoformat()

    def renewals(*args: str) -> int:
        code, report = rotate_json(rhome.root, "--dry-run", *args, now=now)
        assert code == 0
        return sum(1 for a in report["actions"] if a["kind"] == "renew")  # type: ignore[union-attr,index]

    assert (renewals(), renewals("--renew-before", "180d")) == (0, 15)
