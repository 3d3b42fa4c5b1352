"""`audit:` section: where decisions are logged (one JSON line each)."""

from __future__ import annotations

from pydantic import Field

from authsvc.settings.fields import Section


class AuditSettings(Section):
    enabled: bool = True
    # "-" for standard error; a path relative to the home otherwise (opened for append, 0600).
    path: str = "-"
    # Lines are written in batches this often (and at exit); 0 writes each line at once.
    # A crash (not a stop) loses at most this much of the log.
    flush_ms: int = Field(200, ge=0, le=10_000)
