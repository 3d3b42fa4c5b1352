"""What a run leaves for people and monitoring: the node_exporter textfile, `serve`'s /metrics,
one audit line per change, and a bounded history of runs in the inventory."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from authsvc.db.tables import ROTATION_RUNS
from authsvc.home.opened import Home, open_home
from authsvc.rotation.executor import rotate
from authsvc.rotation.runs import last_runs
from authsvc.runtime import build_runtime
from authsvc.web.app import create_app
from pki.clock import FixedClock
from tests.rotate.support import DAY, SCENARIO_DAY, T0, busy_home, copy_home

NOW = T0 + SCENARIO_DAY * DAY


@pytest.fixture(scope="module")
def scenario(rotate_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report") / "scenario"
    overrides = {"rotation": {"webhook_kubeconfig": "webhook.conf", "textfile": "textfile/authsvc_rotate.prom"}}
    busy_home(copy_home(rotate_template, root, FixedClock(T0), **overrides))
    return root


@pytest.fixture
def busy(scenario: Path, tmp_path: Path) -> Home:
    shutil.copytree(scenario, tmp_path / "home")
    return open_home(tmp_path / "home", clock=FixedClock(NOW), environ={})


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_the_textfile_has_the_last_run_for_node_exporter(busy: Home) -> None:
    textfile = busy.root / "textfile" / "authsvc_rotate.prom"
    assert not textfile.exists()
    rotate(busy)
    metrics = samples(textfile.read_text())
    assert metrics[("authsvc_rotate_last_exit_code", ())] == 3
    assert metrics[("authsvc_rotate_last_run_actions", (("result", "done"),))] == 19
    assert metrics[("authsvc_rotate_last_run_actions", (("result", "needs_human"),))] == 1
    assert metrics[("authsvc_rotate_last_success_timestamp_seconds", ())] == NOW.timestamp()
    # The renewed tree expires a year on; the earliest is now the CAs' or a renewed leaf's.
    assert metrics[("authsvc_rotate_next_expiry_timestamp_seconds", ())] > (NOW + 300 * DAY).timestamp()
    assert oct(textfile.stat().st_mode & 0o777) == "0o644"  # node_exporter runs as another user


def test_a_failed_run_is_not_a_success(busy: Home) -> None:
    rotate(busy)
    (busy.root / "pki" / "apiserver.crt").unlink()
    busy.clock.advance(340 * DAY)  # type: ignore[attr-defined]
    assert rotate(busy).exit_code == 1
    last, success = last_runs(busy.stores.engine)
    assert last is not None and last.exit_code == 1 and last.counts["failed"] >= 1
    assert success == NOW  # the run before


def test_serve_metrics_show_the_last_run_from_the_inventory(busy: Home) -> None:
    client = create_app(build_runtime(busy)).test_client()
    before = client.get("/metrics").get_data(as_text=True)
    assert "authsvc_rotate_last_exit_code" not in before  # the twin: no run yet
    rotate(busy)
    fresh = create_app(build_runtime(busy)).test_client()  # the collector caches for 30 s: a new app reads now
    metrics = samples(fresh.get("/metrics").get_data(as_text=True))
    assert metrics[("authsvc_rotate_last_exit_code", ())] == 3
    assert metrics[("authsvc_rotate_last_run_timestamp_seconds", ())] == NOW.timestamp()


def test_every_change_is_audited_and_no_key_is_written_there(busy: Home) -> None:
    report = rotate(busy)
    lines = [json.loads(line) for line in (busy.root / "audit.log").read_text().splitlines()]
    rotation = [line for line in lines if line["actor"] == "rotate"]
    assert len(rotation) == report.counts["done"] == 19
    renewals = [line for line in rotation if line["action"] == "cert.renew"]
    assert {line["outcome"] for line in rotation} == {"ok"} and len(renewals) == 15
    assert all(line["ids"]["serial"] and line["replaces"] for line in renewals)
    assert "PRIVATE KEY" not in (busy.root / "audit.log").read_text()


def test_the_history_of_runs_is_bounded(home_copy: Callable[..., Home]) -> None:
    home = home_copy(rotation={"history": 3})
    for _ in range(5):
        rotate(home)
        home.clock.advance(DAY)  # type: ignore[attr-defined]
    with home.stores.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(ROTATION_RUNS)).scalar() == 3
