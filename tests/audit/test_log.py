"""The audit trail's writer: one schema, whole lines, batches flushed on time, on overflow and on close."""

from __future__ import annotations

import datetime as dt
import json
import os
import select
from pathlib import Path

import pytest

from authsvc.audit import log as audit
from authsvc.audit.events import SCHEMA, AuditEvent
from authsvc.audit.log import AuditLog
from authsvc.identity import UserInfo
from authsvc.settings.audit import AuditSettings
from authsvc.webhook.audit import tokenreview_members

WHEN = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
FIELDS = tokenreview_members(decision="allow", user=UserInfo("alice", groups=("dev",)), backend="tokenfile",
                             token_fingerprint="0123456789ab")  # fmt: skip


def lines_of(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_line(tmp_path: Path) -> None:
    log = AuditLog.open(AuditSettings(path="audit.log", flush_ms=0), tmp_path)
    log.tokenreview(WHEN, WHEN.timestamp(), FIELDS, "10.0.0.1", cached=True)
    assert lines_of(tmp_path / "audit.log") == [
        {
            "time": "2030-01-01T00:00:00.000+00:00",
            "actor": "kube-apiserver",
            "action": "tokenreview",
            "subject": "alice",
            "outcome": "allow",
            "reason": "",
            "ids": {"token": "0123456789ab"},
            "groups": ["dev"],
            "backend": "tokenfile",
            "client": "10.0.0.1",
            "cached": True,
        }
    ]
    assert (tmp_path / "audit.log").stat().st_mode & 0o777 == 0o600
    log.close()


def test_batches_are_written_on_flush_and_on_close(tmp_path: Path) -> None:
    log = AuditLog.open(AuditSettings(path="audit.log", flush_ms=10_000), tmp_path)
    for i in range(3):
        log.tokenreview(WHEN, WHEN.timestamp(), FIELDS, f"10.0.0.{i}", cached=False)
    assert (tmp_path / "audit.log").read_text() == ""  # not yet: the batch is pending
    log.flush()
    assert [line["client"] for line in lines_of(tmp_path / "audit.log")] == ["10.0.0.0", "10.0.0.1", "10.0.0.2"]
    log.tokenreview(WHEN, WHEN.timestamp(), FIELDS, "10.0.0.9", cached=False)
    log.close()
    assert len(lines_of(tmp_path / "audit.log")) == 4


def test_overflow_is_written_by_the_request_that_causes_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit, "MAX_PENDING", 5)
    log = AuditLog.open(AuditSettings(path="audit.log", flush_ms=10_000), tmp_path)
    for _ in range(6):
        log.tokenreview(WHEN, WHEN.timestamp(), FIELDS, "10.0.0.1", cached=False)
    assert len(lines_of(tmp_path / "audit.log")) == 6
    log.close()


def test_writes_hold_whole_lines_within_pipe_buf(monkeypatch: pytest.MonkeyPatch) -> None:
    read_end, write_end = os.pipe()
    log = AuditLog(write_end, owned=True, flush_seconds=10.0)
    count = 3 * select.PIPE_BUF // 150
    for i in range(count):
        log.tokenreview(WHEN, WHEN.timestamp(), FIELDS, f"client-{i}", cached=False)
    writes: list[int] = []
    real_write = os.write

    def counting_write(fd: int, data: bytes | memoryview) -> int:
        writes.append(len(data))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", counting_write)
    log.close()
    monkeypatch.undo()
    data = b""
    while chunk := os.read(read_end, 65536):
        data += chunk
    os.close(read_end)
    assert len(writes) > 1 and max(writes) <= select.PIPE_BUF
    assert len(data.splitlines()) == count and all(json.loads(line) for line in data.splitlines())


def test_disabled_writes_nothing(tmp_path: Path) -> None:
    log = AuditLog.open(AuditSettings(enabled=False, path="audit.log"), tmp_path)
    log.tokenreview(WHEN, WHEN.timestamp(), FIELDS, "10.0.0.1", cached=False)
    log.close()
    assert not (tmp_path / "audit.log").exists()


def test_every_line_has_the_schema_first_and_details_cannot_override_it(tmp_path: Path) -> None:
    log = AuditLog.open(AuditSettings(path="audit.log", flush_ms=10_000), tmp_path, batched=False)
    event = AuditEvent(
        "cert.issue",
        "ok",
        actor="cli:root",
        subject="alice",
        ids={"serial": "4fce"},
        details={"groups": ["dev"], "outcome": "forged", "time": "forged"},
    )
    log.record(WHEN, event)  # batched=False: written at once whatever flush_ms says
    [line] = lines_of(tmp_path / "audit.log")
    assert tuple(line)[: len(SCHEMA)] == SCHEMA
    assert line["outcome"] == "ok" and line["time"] == "2030-01-01T00:00:00.000+00:00" and line["groups"] == ["dev"]
    log.close()


def test_a_millisecond_keeps_its_text_and_the_next_one_gets_its_own(tmp_path: Path) -> None:
    log = AuditLog.open(AuditSettings(path="audit.log", flush_ms=0), tmp_path)
    later = WHEN + dt.timedelta(microseconds=400)  # the same millisecond
    next_ms = WHEN + dt.timedelta(milliseconds=1)
    other_zone = WHEN.astimezone(dt.timezone(dt.timedelta(hours=2)))
    for when in (WHEN, later, next_ms, other_zone):
        log.tokenreview(when, when.timestamp(), FIELDS, "10.0.0.1", cached=False)
    times = [line["time"] for line in lines_of(tmp_path / "audit.log")]
    assert times == [
        "2030-01-01T00:00:00.000+00:00",
        "2030-01-01T00:00:00.000+00:00",
        "2030-01-01T00:00:00.001+00:00",
        "2030-01-01T02:00:00.000+02:00",
    ]
    log.close()
