"""Fixtures for the rotation tests: one small home per session (ECDSA kubeadm tree, ES256 tokens,
made at T0 = 2030-01-01 on a fixed clock), copied for every test that changes it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from authsvc.home.opened import Home
from authsvc.init.steps import initialize_home
from authsvc.settings import settings_from_mapping
from pki.clock import FixedClock
from tests.rotate.support import T0, TEMPLATE_SETTINGS, copy_home


@pytest.fixture(scope="session")
def rotate_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rotate") / "home"
    ctx = initialize_home(root, settings_from_mapping(TEMPLATE_SETTINGS), clock=FixedClock(T0), environ={})
    ctx.home.stores.engine.dispose()  # a complete SQLite file (no WAL) that copies cleanly
    return root


@pytest.fixture
def rclock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def home_copy(rotate_template: Path, tmp_path: Path, rclock: FixedClock) -> Callable[..., Home]:
    """`home_copy(name="home", rotation={...}, ...)`: a copy of the template with settings merged in."""

    def build(name: str = "home", **overrides: Any) -> Home:
        return copy_home(rotate_template, tmp_path / name, rclock, **overrides)

    return build


@pytest.fixture
def rhome(home_copy: Callable[..., Home]) -> Home:
    return home_copy()
