"""The audit-log reader: plain and gzip, line numbers for every unusable line, the fast path."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from authsvc.rbac import reader as reader_module
from authsvc.rbac.reader import AuditLogReader
from tests.rbac.support import event, line, write_log

ALICE = b'"alice"'


def read_all(path: Path, needle: bytes | None = None) -> tuple[list[int], AuditLogReader]:
    reader = AuditLogReader(needle)
    return [number for number, _ in reader.events(str(path))], reader


def test_every_event_of_a_plain_log_is_read_with_its_line_number(tmp_path: Path) -> None:
    log = write_log(tmp_path / "audit.log", [event("get", "pods"), "", event("list", "pods")])

    numbers, reader = read_all(log)

    assert numbers == [1, 3]  # the blank line is skipped, not a problem
    assert reader.report.lines == 3 and reader.report.problem_count == 0


def test_gzip_is_recognised_by_its_content_not_its_name(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"  # no .gz: rotated files are named by whatever rotated them
    log.write_bytes(gzip.compress((line(event("get", "pods")) + "\n").encode() * 3))

    numbers, reader = read_all(log)

    assert numbers == [1, 2, 3] and reader.report.problem_count == 0


def test_v1beta1_events_are_read(tmp_path: Path) -> None:
    log = write_log(tmp_path / "audit.log", [event("get", "pods", version="audit.k8s.io/v1beta1")])

    assert read_all(log)[0] == [1]


HOSTILE = [
    pytest.param("not json at all", "not JSON", id="not-json"),
    pytest.param('{"kind":"Event","apiVersion":"audit.k8s.io/v1",', "not JSON", id="truncated-line"),
    pytest.param("[" * 100_000 + "]" * 100_000, "not JSON", id="deeply-nested"),
    pytest.param('["an","array"]', "not an audit Event object", id="array"),
    pytest.param(line({**event("get", "pods"), "kind": "EventList"}), "not an audit Event object", id="event-list"),
    pytest.param(
        line(event("get", "pods", version="audit.k8s.io/v1alpha1")),
        "apiVersion 'audit.k8s.io/v1alpha1' is not one of audit.k8s.io/v1, audit.k8s.io/v1beta1",
        id="unknown-version",
    ),
    pytest.param(line({**event("get", "pods"), "apiVersion": 7}), "(not a short string)", id="version-not-string"),
]


@pytest.mark.parametrize(("bad", "reason"), HOSTILE)
@pytest.mark.parametrize("needle", [None, ALICE], ids=["parse-all", "fast-path"])
def test_an_unusable_line_is_counted_with_its_number_and_reading_goes_on(
    tmp_path: Path, bad: str, reason: str, needle: bytes | None
) -> None:
    # The bad line is another user's (or nobody's): the fast path must still tell it apart.
    other = bad.replace("alice", "bob")
    log = write_log(tmp_path / "audit.log", [event("get", "pods"), other, event("list", "pods")])

    numbers, reader = read_all(log, needle)

    assert numbers == [1, 3]
    assert reader.report.problem_count == 1
    (problem,) = reader.report.problems
    assert problem.line == 2 and reason in problem.reason
    assert str(problem).startswith(f"{log} line 2: ")


def test_a_problem_never_quotes_the_line(tmp_path: Path) -> None:
    # At Request level a line can hold a Secret's data: messages name the line, not its content.
    secret = "c2VjcmV0LXZhbHVl"
    log = write_log(tmp_path / "audit.log", ['{"data":{"password":"' + secret + '"'])

    _, reader = read_all(log)

    assert secret not in str(reader.report.problems[0])


def test_a_truncated_gzip_is_reported_after_the_last_line_read(tmp_path: Path) -> None:
    whole = gzip.compress("".join(line(event("get", "pods", audit_id=str(i))) + "\n" for i in range(2000)).encode())
    log = tmp_path / "audit.log.gz"
    log.write_bytes(whole[: len(whole) // 2])

    numbers, reader = read_all(log)

    assert 0 < len(numbers) < 2000
    kinds = reader.report.problem_kinds
    assert kinds["truncated"] == 1
    truncated = [p for p in reader.report.problems if "truncated" in p.reason]
    assert truncated[0].line > numbers[-1]


def test_corrupt_gzip_data_is_reported(tmp_path: Path) -> None:
    whole = bytearray(gzip.compress((line(event("get", "pods")) + "\n").encode() * 50))
    whole[20:40] = b"\xff" * 20  # inside the deflate stream
    log = tmp_path / "audit.log.gz"
    log.write_bytes(bytes(whole))

    _, reader = read_all(log)

    assert reader.report.problem_kinds["corrupt"] == 1


def test_an_intact_gzip_is_the_twin_of_the_truncated_one(tmp_path: Path) -> None:
    log = tmp_path / "audit.log.gz"
    log.write_bytes(gzip.compress((line(event("get", "pods")) + "\n").encode() * 2000))

    numbers, reader = read_all(log)

    assert len(numbers) == 2000 and reader.report.problem_count == 0


def test_an_overlong_line_is_skipped_without_holding_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader_module, "MAX_LINE", 4096)
    big = line({**event("get", "pods"), "padding": "x" * 20_000})
    log = write_log(tmp_path / "audit.log", [event("get", "pods"), big, event("list", "pods")])

    numbers, reader = read_all(log)

    assert numbers == [1, 3]
    assert reader.report.problems[0].line == 2 and "longer than 4096 bytes" in reader.report.problems[0].reason


def test_problems_beyond_the_listed_ones_are_still_counted(tmp_path: Path) -> None:
    log = write_log(tmp_path / "audit.log", ["garbage"] * 25)

    _, reader = read_all(log)

    assert reader.report.problem_count == 25 and len(reader.report.problems) == reader_module.MAX_LISTED


def test_fast_path_parses_only_the_lines_that_may_be_the_subjects(tmp_path: Path) -> None:
    events = [event("get", "pods", user="bob")] * 98 + [event("get", "pods"), event("get", "pods", user="carol")]
    log = write_log(tmp_path / "audit.log", events)

    numbers, reader = read_all(log, ALICE)

    assert numbers == [99] and reader.report.parsed == 1
    # The twin: without a needle every line is parsed.
    numbers, reader = read_all(log, None)
    assert len(numbers) == 100 and reader.report.parsed == 100


def test_a_line_encoded_unlike_go_falls_back_to_parsing(tmp_path: Path) -> None:
    # Spaces after colons (a re-encoding tool): the version mark does not match, so it is parsed.
    spaced = line(event("get", "pods", user="bob")).replace('":', '": ')
    log = write_log(tmp_path / "audit.log", [spaced])

    numbers, reader = read_all(log, ALICE)

    assert numbers == [1] and reader.report.parsed == 1
