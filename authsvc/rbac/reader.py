"""Streaming reader of the API server's JSON audit log (`--audit-log-path`): one event a line.

Plain or gzip (found by its magic bytes, not by the file name), a file or standard input
("-"). Lines are read one at a time, so memory does not depend on the log's size. A line
that is not an audit.k8s.io/v1 or v1beta1 Event is counted and listed with its line number
(never its content: at Request level a line may hold a Secret), and reading goes on.

The fast path: when the caller gives a needle (the subject's name as the API server writes it,
see subjects.Subject.needle), a line without it is not parsed; it only has to look like an
event of a known version as Go's encoder writes one (it begins with the kind and apiVersion and
ends with a brace). Anything else is parsed and checked in full.
"""

from __future__ import annotations

import gzip
import io
import json
import sys
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

KNOWN_VERSIONS = ("audit.k8s.io/v1", "audit.k8s.io/v1beta1")
# How Go's encoder begins every event line the API server writes (TypeMeta comes first).
_EVENT_STARTS = tuple(f'{{"kind":"Event","apiVersion":"{v}",'.encode() for v in KNOWN_VERSIONS)
_GZIP_MAGIC = b"\x1f\x8b"
# Metadata-level events are a few KiB. A longer line (a RequestResponse event of a big list)
# is reported and skipped rather than held in memory whole.
MAX_LINE = 4 * 1024 * 1024
MAX_LISTED = 10
_DECODER = json.JSONDecoder()  # problems kept with their line numbers; the rest are only counted


@dataclass(frozen=True, slots=True)
class Problem:
    source: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.source} line {self.line}: {self.reason}"


@dataclass
class ReadReport:
    """What was read: line counts, and the problems (the first MAX_LISTED with line numbers)."""

    lines: int = 0
    parsed: int = 0  # lines parsed as JSON (the others were told apart by the fast path)
    problems: list[Problem] = field(default_factory=list)
    problem_kinds: Counter[str] = field(default_factory=Counter)

    @property
    def problem_count(self) -> int:
        return sum(self.problem_kinds.values())

    def add_problem(self, source: str, line: int, kind: str, reason: str) -> None:
        self.problem_kinds[kind] += 1
        if len(self.problems) < MAX_LISTED:
            self.problems.append(Problem(source, line, reason))


class AuditLogReader:
    """Yields (source, line number, event) for the lines that may be the subject's events."""

    def __init__(self, needle: bytes | None = None) -> None:
        self.needle = needle
        self.report = ReadReport()

    def events(self, source: str) -> Iterator[tuple[int, dict[str, Any]]]:
        """The events of one file ("-": standard input). Raises OSError if it cannot be opened."""
        with _opened(source) as stream:
            yield from self._events(source, stream)

    def _events(self, source: str, stream: IO[bytes]) -> Iterator[tuple[int, dict[str, Any]]]:
        report, needle = self.report, self.needle
        number = 0
        try:
            for number, line in enumerate(_lines(stream), 1):
                report.lines += 1
                if line is None:
                    report.add_problem(source, number, "too long", f"longer than {MAX_LINE} bytes, skipped")
                    continue
                line = line.strip()
                if not line:
                    continue
                if needle is not None and needle not in line and _looks_like_event(line):
                    continue
                event = self._parse(source, number, line)
                if event is not None:
                    yield number, event
        except EOFError:
            report.add_problem(source, number + 1, "truncated", "the gzip stream ends early (truncated file)")
        except (gzip.BadGzipFile, zlib.error):
            report.add_problem(source, number + 1, "corrupt", "corrupt gzip data; the rest is not read")

    def _parse(self, source: str, number: int, line: bytes) -> dict[str, Any] | None:
        report = self.report
        report.parsed += 1
        try:
            # raw_decode of str: json.loads would sniff the encoding and skip whitespace again.
            text = line.decode()
            event, end = _DECODER.raw_decode(text)
            if end != len(text):
                raise ValueError("trailing data")
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            report.add_problem(source, number, "not JSON", "not JSON")
            return None
        if not isinstance(event, dict) or event.get("kind") != "Event":
            report.add_problem(source, number, "not an event", "not an audit Event object")
            return None
        version = event.get("apiVersion")
        if version not in KNOWN_VERSIONS:
            shown = repr(version) if isinstance(version, str) and len(version) < 60 else "(not a short string)"
            report.add_problem(
                source, number, "unknown apiVersion", f"apiVersion {shown} is not one of {', '.join(KNOWN_VERSIONS)}"
            )
            return None
        return event


def _looks_like_event(line: bytes) -> bool:
    return line.startswith(_EVENT_STARTS) and line.endswith(b"}")


def _lines(stream: IO[bytes]) -> Iterator[bytes | None]:
    """The stream's lines; None for a line longer than MAX_LINE (whose rest is skipped)."""
    readline = stream.readline
    while line := readline(MAX_LINE):
        if len(line) == MAX_LINE and not line.endswith(b"\n"):
            while (rest := readline(MAX_LINE)) and not rest.endswith(b"\n"):
                pass
            yield None
            continue
        yield line


@contextmanager
def _opened(source: str) -> Iterator[IO[bytes]]:
    raw: Any = sys.stdin.buffer if source == "-" else Path(source).open("rb")  # noqa: SIM115
    # peek() needs a buffered stream (a pipe's stdin is one; an in-memory one may not be).
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)
    try:
        if buffered.peek(2)[:2] == _GZIP_MAGIC:
            with gzip.GzipFile(fileobj=buffered, mode="rb") as unzipped:
                yield cast(IO[bytes], unzipped)
        else:
            yield buffered
    finally:
        if source != "-":
            raw.close()
