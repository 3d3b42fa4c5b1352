"""The audit log: one JSON line per TokenReview decision, never the token (a hash prefix instead).

    {"time":"2030-01-01T00:00:00.000+00:00","decision":"allow","user":"alice","groups":["dev"],
     "backend":"tokenfile","token":"88ac3a398c5b","client":"10.0.0.1","cached":false}

The members that depend only on the decision are rendered once per cached answer
(`decision_fields`); a line adds the time, the client and whether it came from the cache.
Each line is one write(2) on a file opened O_APPEND, so lines from the threads and worker
processes of one server never interleave.
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
_ENCODER = json.JSONEncoder(separators=(",", ":"))


def decision_fields(
    *, decision: str, user: UserInfo | None, backend: str, token_fingerprint: str, error: str | None = None
) -> str:
    """The members of an audit line about the decision itself (a JSON object without its braces)."""
    fields: dict[str, Any] = {
        "decision": decision,
        "user": user.username if user is not None else None,
        "groups": list(user.groups) if user is not None else [],
        "backend": backend,
        "token": token_fingerprint,
    }
    if error:
        fields["error"] = error
    return _ENCODER.encode(fields)[1:-1]


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

    def decision(self, when: dt.datetime, fields: str, client: str, cached: bool) -> None:
        """Write one line: the time, `decision_fields(...)`, the client address, cache hit or not."""
        if self._fd is None:
            return
        line = (
            f'{{"time":"{when.isoformat(timespec="milliseconds")}",{fields},'
            f'"client":{_ENCODER.encode(client)},"cached":{"true" if cached else "false"}}}\n'
        )
        os.write(self._fd, line.encode())

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
