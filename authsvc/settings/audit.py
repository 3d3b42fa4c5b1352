"""`audit:` section: where decisions are logged (one JSON line each)."""

from __future__ import annotations

from authsvc.settings.types import Section


class AuditSettings(Section):
    enabled: bool = True
    # "-" for standard error; a path relative to the home otherwise (opened for append, 0600).
    path: str = "-"
