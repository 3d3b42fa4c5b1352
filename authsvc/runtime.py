"""Everything a running server needs, built once at start from the home and passed down."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from authsvc.home.opened import Home
from authsvc.settings import Settings
from pki.clock import Clock


@dataclass
class Services:
    """The long-lived objects of one server process (authenticators, caches, metrics, keys).

    Components are added as attributes by the modules that own them, through `components`,
    so that this file does not grow with every backend.
    """

    home: Home
    components: dict[str, Any] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        return self.home.settings

    @property
    def clock(self) -> Clock:
        return self.home.clock
