"""The audit log: one JSON line per TokenReview decision, never the token (a hash prefix instead).

Each line is written with a single write(2) on a file opened O_APPEND, so lines from the
threads and the worker processes of one server never interleave.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from authsvc.identity import UserInfo
from authsvc.settings.audit import AuditSettings

if TYPE_CHECKING:
    from authsvc.services import Services

AUDIT_COMPONENT = "audit"


class AuditLog:
    def __init__(self, fd: int | None, *, owned: bool = False) -> None:
        # fd None: auditing is off (every call is a no-op).
        self._fd = fd
        self._owned = owned

    @classmethod
    def open(cls, settings: AuditSettings, home_root: Path) -> AuditLog:
        if not settings.enabled:
            return cls(None)
        if settings.path == "-":
            return cls(sys.stderr.fileno())
        path = home_root / settings.path
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return cls(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), owned=True)

    def decision(
        self,
        *,
        when: dt.datetime,
        decision: str,
        user: UserInfo | None,
        backend: str,
        token_fingerprint: str,
        client: str,
        cached: bool,
        error: str | None = None,
    ) -> None:
        if self._fd is None:
            return
        record: dict[str, Any] = {
            "time": when.isoformat(timespec="milliseconds"),
            "decision": decision,
            "user": user.username if user is not None else None,
            "groups": list(user.groups) if user is not None else [],
            "backend": backend,
            "token": token_fingerprint,
            "client": client,
            "cached": cached,
        }
        if error:
            record["error"] = error
        self.write(record)

    def write(self, record: dict[str, Any]) -> None:
        if self._fd is not None:
            os.write(self._fd, json.dumps(record, separators=(",", ":")).encode() + b"\n")

    def close(self) -> None:
        if self._owned and self._fd is not None:
            os.close(self._fd)
        self._fd = None


def audit_of(services: Services) -> AuditLog:
    """The process's audit log (opened once from settings; tests may put their own in components)."""
    audit = services.components.get(AUDIT_COMPONENT)
    if audit is None:
        audit = services.components.setdefault(
            AUDIT_COMPONENT, AuditLog.open(services.settings.audit, services.home.root)
        )
    assert isinstance(audit, AuditLog)
    return audit
