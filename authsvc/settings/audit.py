"""`audit:` section: the audit trail (one JSON line per thing that changes or decides access)."""

from __future__ import annotations

from pydantic import Field

from authsvc.settings.fields import Section


class AuditSettings(Section):
    enabled: bool = True
    # A path relative to the home (opened for append, 0600; `authsvc audit` reads it), or "-" for
    # standard error (a container's log: every process then writes its lines there, commands too).
    path: str = "audit.log"
    # Lines are written in batches this often (and at exit); 0 writes each line at once.
    # A crash (not a stop) loses at most this much of the log.
    flush_ms: int = Field(200, ge=0, le=10_000)
