"""Fixtures of the hostile-input tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from authsvc.home.opened import Home, open_home
from tests.hostile.webhook import AuditLedger


@pytest.fixture(scope="module")
def shared_home(home_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Home:
    """One copy of the initialised home per module, for the cases that must write nothing
    (each checks that it did not, so one that did cannot hide behind another)."""
    root = tmp_path_factory.mktemp("hostile") / "home"
    shutil.copytree(home_template, root)
    return open_home(root, environ={})


@pytest.fixture(scope="module")
def ledger() -> AuditLedger:
    """The module's answered reviews, checked against the server's audit log by its last test."""
    return AuditLedger()
