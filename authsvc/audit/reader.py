"""Reading the audit trail back (`authsvc audit`): line by line, filtered, in constant memory.

A line whose raw bytes cannot name the user asked for is skipped before it is parsed (the
user's name, JSON-encoded, must appear in it), so filtering a large trail for one person
parses only that person's lines. Lines written before the schema (authsvc/audit/events.py)
existed, TokenReview decisions, /login attempts and rotation changes, are read in the schema's
terms; a line that is not JSON or has no `action` is counted and skipped.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from authsvc.audit import events
from authsvc.errors import InvalidInput

_DECODER = json.JSONDecoder()


@dataclass(frozen=True, slots=True)
class AuditFilter:
    user: str | None = None  # the line's subject or actor
    since: dt.datetime | None = None  # lines at or after
    # An action ("cert.revoke"), or the start of one ("cert" or "cert.*": cert.issue, cert.renew, ...).
    action: str | None = None

    @property
    def needle(self) -> bytes | None:
        """What a line about `user` must contain: the name as JSON writes it (quotes included)."""
        return json.dumps(self.user).encode() if self.user is not None else None

    def matches(self, record: dict[str, Any]) -> bool:
        if self.user is not None and self.user not in (record.get("subject"), record.get("actor")):
            return False
        if self.action is not None and not _action_matches(str(record.get("action", "")), self.action):
            return False
        if self.since is not None:
            when = _time_of(record)
            if when is None or when < self.since:
                return False
        return True


def _action_matches(action: str, wanted: str) -> bool:
    prefix = wanted.removesuffix(".*").removesuffix("*")
    return action == wanted or action.startswith(prefix.rstrip(".") + ".")


def _time_of(record: dict[str, Any]) -> dt.datetime | None:
    try:
        when = dt.datetime.fromisoformat(str(record.get("time", "")))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


@dataclass
class ReadReport:
    lines: int = 0
    skipped: int = 0  # not JSON, or not an audit line
    files: list[str] = field(default_factory=list)


def read(
    sources: Iterable[str], audit_filter: AuditFilter, report: ReadReport | None = None
) -> Iterator[dict[str, Any]]:
    """The records of `sources` (paths; "-" is standard input; *.gz is read as gzip) that match, in order."""
    report = report if report is not None else ReadReport()
    needle = audit_filter.needle
    for source in sources:
        report.files.append(source)
        with _opened(source) as stream:
            for raw in stream:
                report.lines += 1
                if needle is not None and needle not in raw:
                    continue
                record = parse_line(raw)
                if record is None:
                    report.skipped += 1
                elif audit_filter.matches(record):
                    yield record


@contextmanager
def _opened(source: str) -> Iterator[Iterable[bytes]]:
    if source == "-":
        yield sys.stdin.buffer
        return
    path = Path(source)
    if not path.is_file():
        raise InvalidInput(f"audit trail {source} does not exist (or is not a file)")
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as compressed:
            yield compressed
    else:
        with path.open("rb") as plain:
            yield plain


def parse_line(raw: bytes) -> dict[str, Any] | None:
    """One line in the schema's terms, or None when it is not an audit line."""
    try:
        document = _DECODER.decode(raw.decode())
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    if "action" in document and "outcome" in document:
        return document
    return _legacy(document)


def _legacy(line: dict[str, Any]) -> dict[str, Any] | None:
    """A line of the shapes before the schema: TokenReview decisions, logins, rotation changes."""
    time = line.get("time")
    if "decision" in line:
        rest = {k: v for k, v in line.items() if k not in ("time", "decision", "user", "token", "error")}
        return {"time": time, "actor": events.APISERVER, "action": events.TOKENREVIEW, "subject": line.get("user"),
                "outcome": line["decision"], "reason": line.get("error") or "", "ids": {"token": line.get("token")},
                **rest}  # fmt: skip
    if line.get("event") == "login":
        user = line.get("user")
        return {"time": time, "actor": user, "action": events.LOGIN, "subject": user, "outcome": line.get("result"),
                "reason": line.get("reason", ""), "ids": {}, "backend": line.get("backend"),
                "client": line.get("client")}  # fmt: skip
    if line.get("event") == "rotation":
        kind = str(line.get("action", ""))
        renewal = kind in ("renew", "reissue")
        serial = line.get("serial")
        return {"time": time, "actor": events.ROTATE,
                "action": events.CERT_RENEW if renewal else f"{events.ROTATION_PREFIX}{kind}",
                "subject": line.get("target") if renewal else None,
                "outcome": events.OK if line.get("result") == "done" else events.FAILED,
                "reason": line.get("detail", "") if line.get("result") != "done" else "",
                "ids": {"serial": serial} if serial else {}, "target": line.get("target"),
                "detail": line.get("detail")}  # fmt: skip
    return None


def parse_since(text: str, now: dt.datetime) -> dt.datetime:
    """`--since`: a duration back from now (90m, 24h, 7d) or a time (ISO 8601; UTC when it names no zone)."""
    from pki.durations import parse_duration

    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"--since {text!r} is neither a duration (24h, 7d) nor an ISO 8601 time") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
