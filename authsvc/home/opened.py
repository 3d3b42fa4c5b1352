"""An opened home: its settings and clock, and one each of layout, secrets and stores."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from authsvc.errors import HomeError
from authsvc.home.layout import HomeLayout
from authsvc.home.secrets import HomeSecrets
from authsvc.home.stores import HomeStores
from authsvc.settings import Settings, load_settings
from pki.clock import Clock, system_clock


@dataclass(frozen=True, slots=True)
class Home:
    settings: Settings
    clock: Clock
    layout: HomeLayout
    secrets: HomeSecrets
    stores: HomeStores

    @property
    def root(self) -> Path:
        return self.layout.root

    @classmethod
    def of(
        cls, layout: HomeLayout, settings: Settings, *, clock: Clock = system_clock, environ: Mapping[str, str]
    ) -> Home:
        secrets = HomeSecrets(settings, layout, environ)
        return cls(settings, clock, layout, secrets, HomeStores(settings, layout, secrets, clock))


def open_home(
    root: Path,
    config_path: Path | None = None,
    *,
    clock: Clock = system_clock,
    environ: Mapping[str, str] | None = None,
) -> Home:
    """The home at `root` with its settings loaded; HomeError when it does not exist."""
    if not root.is_dir():
        raise HomeError(f"home {root} does not exist: run `authsvc init --home {root}` first")
    layout = HomeLayout.at(root, config_path)
    return Home.of(
        layout, load_settings(layout.config_path), clock=clock, environ=dict(os.environ) if environ is None else environ
    )
