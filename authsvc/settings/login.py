"""`login:` section: the /login endpoint, its backends and rate limits."""

from __future__ import annotations

from authsvc.settings.types import Section


class LoginSettings(Section):
    backends: tuple[str, ...] = ()
