"""A crash at every step of a run, then a rerun: the home converges to what one uninterrupted run
makes, and nothing is lost.

Two ways to crash: at the Nth `os.replace` (every atomic write and rename of the run: a crash
between any two file swaps, backups included), and from the executor's hook after the Nth
action. The crash is a BaseException, as a kill is: nothing in the run can catch it. What is
compared: every automatic certificate's logical name → (subject, SANs, public key), the signing
keys' states and files, the CRL, the webhook kubeconfig; serials and dates may differ.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from authsvc.home.opened import Home, open_home
from authsvc.rotation.executor import rotate
from authsvc.rotation.facts import kubeconfig_fact, kubeconfig_targets
from pki.clock import FixedClock
from pki.inventory import CertStatus
from pki.rotation.plan import Action, NeedsHuman
from tests.crash import Crash, crash_at
from tests.rotate.support import (
    DAY,
    SCENARIO_DAY,
    T0,
    assert_nothing_lost,
    busy_home,
    copy_home,
    key_state,
    logical_state,
)

NOW = T0 + SCENARIO_DAY * DAY


@pytest.fixture(scope="module")
def scenario(rotate_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("crash") / "scenario"
    busy_home(copy_home(rotate_template, root, FixedClock(T0), rotation={"webhook_kubeconfig": "webhook.conf"}))
    return root


def fresh(scenario: Path, target: Path) -> Home:
    shutil.copytree(scenario, target)
    return open_home(target, clock=FixedClock(NOW), environ={})


def outcome(home: Home) -> dict[str, Any]:
    """What must be the same after a crash and a rerun as after one clean run."""
    crl = x509.load_pem_x509_crl((home.root / "pki" / "ca.crl").read_bytes())
    webhook = [kubeconfig_fact(home, t) for t in kubeconfig_targets(home) if t.client_file]
    manual = sorted(
        r.common_name for r in home.stores.inventory.certificates(status=CertStatus.VALID) if not r.auto_renew
    )
    return {
        "certificates": logical_state(home),
        "keys": key_state(home),
        "crl": (crl.next_update_utc, sorted(r.serial_number for r in crl)),
        "webhook.conf current": [(w.ca_current, w.client_current) for w in webhook],
        "valid rows not renewed automatically (CAs, people)": manual,
    }


@pytest.fixture(scope="module")
def reference(scenario: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One uninterrupted run, counting the file swaps and the actions it makes."""
    home = fresh(scenario, tmp_path_factory.mktemp("reference") / "home")
    actions: list[Action] = []
    with crash_at(None) as replaces:
        report = rotate(home, hook=actions.append)
    assert report.exit_code == 3, [r.as_dict() for r in report.results]  # dave's certificate needs a human
    assert {r.action.kind for r in report.results} >= {"renew", "kubeconfig", "signing-key", "crl", "prune"}
    assert report.counts["failed"] == 0
    assert_nothing_lost(home, NOW)
    return {"outcome": outcome(home), "replaces": replaces.calls, "actions": len(actions)}


def rerun_converges(home: Home, reference: dict[str, Any]) -> None:
    home = open_home(home.root, clock=FixedClock(NOW), environ={})  # a new process
    report = rotate(home)
    assert report.counts["failed"] == 0, [r.as_dict() for r in report.results if r.status == "failed"]
    assert outcome(home) == reference["outcome"]
    assert_nothing_lost(home, NOW)
    again = rotate(home)  # converged: only the human's part is left
    assert [type(r.action) for r in again.results] == [NeedsHuman], [r.as_dict() for r in again.results]


def test_the_reference_run_swaps_files_and_runs_actions(reference: dict[str, Any]) -> None:
    assert reference["replaces"] >= 35 and reference["actions"] >= 19


def crash_then_rerun(home: Home, crashing_run: Callable[[Home], object], reference: dict[str, Any]) -> None:
    with pytest.raises(Crash):
        crashing_run(home)
    home.stores.engine.dispose()
    rerun_converges(home, reference)
    shutil.rmtree(home.root)


def test_a_crash_at_every_file_swap_then_a_rerun_converges(
    scenario: Path, reference: dict[str, Any], tmp_path: Path
) -> None:
    for n in range(1, reference["replaces"] + 1):

        def run(home: Home, n: int = n) -> object:
            with crash_at(n):
                return rotate(home)

        crash_then_rerun(fresh(scenario, tmp_path / f"crash-{n}"), run, reference)


def test_a_crash_after_every_action_then_a_rerun_converges(
    scenario: Path, reference: dict[str, Any], tmp_path: Path
) -> None:
    for n in range(1, reference["actions"] + 1):
        seen: list[Action] = []

        def hook(action: Action, seen: list[Action] = seen, n: int = n) -> None:
            seen.append(action)
            if len(seen) == n:
                raise Crash(f"killed after action {n} ({action.kind} {action.target})")

        crash_then_rerun(fresh(scenario, tmp_path / f"after-{n}"), lambda home, h=hook: rotate(home, hook=h), reference)


def test_without_the_rerun_the_crashed_home_is_not_converged(
    scenario: Path, reference: dict[str, Any], tmp_path: Path
) -> None:
    """The failing twin: a crash half-way leaves work that only the rerun does."""
    home = fresh(scenario, tmp_path / "half")
    with crash_at(reference["replaces"] // 2), pytest.raises(Crash):
        rotate(home)
    home = open_home(home.root, clock=FixedClock(NOW), environ={})
    assert outcome(home) != reference["outcome"]
