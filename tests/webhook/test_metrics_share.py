"""Counters summed over processes through a directory of snapshots (authsvc/metrics/share.py).

Each ServerMetrics here stands for one worker process of `authsvc serve`: its own counters and
its own snapshot file in the shared directory. The real processes are in tests/serve/test_metrics.py.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from authsvc.metrics.server import ServerMetrics
from authsvc.metrics.share import SnapshotShare, read_snapshot, write_snapshot

REQUESTS = "authsvc_tokenreview_requests_total"
REPO = Path(__file__).resolve().parents[2]


def worker(directory: Path) -> ServerMetrics:
    return ServerMetrics(share=SnapshotShare(directory))


def scraped(metrics: ServerMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, labels): value} of one /metrics answer, read by prometheus-client's parser."""
    text = metrics.render()[0].decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def requests_total(metrics: ServerMetrics) -> float:
    return sum(value for (name, _), value in scraped(metrics).items() if name == REQUESTS)


def count(metrics: ServerMetrics, n: int, decision: str = "allow", backend: str = "tokenfile") -> None:
    for _ in range(n):
        metrics.request(decision, backend, 0.0002, cached=True)


def test_an_answer_sums_its_own_counts_and_every_other_snapshot(tmp_path: Path) -> None:
    a, b = worker(tmp_path), worker(tmp_path)
    count(a, 3)
    count(b, 2, "deny", "")
    b.login_result("ok")
    b.ldap_error("bind")
    assert b.share is not None
    b.share.publish(b.counts)  # what b's thread does within a second
    samples = scraped(a)
    assert samples[(REQUESTS, (("backend", "tokenfile"), ("decision", "allow")))] == 3
    assert samples[(REQUESTS, (("backend", ""), ("decision", "deny")))] == 2
    assert samples[("authsvc_tokenreview_cache_total", (("result", "hit"),))] == 5
    assert samples[("authsvc_tokenreview_duration_seconds_count", ())] == 5
    assert samples[("authsvc_tokenreview_duration_seconds_bucket", (("le", "0.0005"),))] == 5
    assert samples[("authsvc_login_attempts_total", (("result", "ok"),))] == 1
    assert samples[("authsvc_ldap_errors_total", (("operation", "bind"),))] == 1
    assert samples[("authsvc_authn_backend_errors_total", (("backend", "ldap"),))] == 1


def test_an_exited_process_keeps_counting(tmp_path: Path) -> None:
    """Its last snapshot stays in the directory: totals never go down when a worker goes."""
    gone = worker(tmp_path)
    count(gone, 4)
    assert gone.share is not None
    gone.share.publish(gone.counts)
    del gone
    write_snapshot(tmp_path / "999999-0badc0de.json", {("authsvc_tokenreview_requests", ("deny", "")): 6})
    live = worker(tmp_path)
    count(live, 1)
    assert requests_total(live) == 11


def test_answers_never_decrease_whichever_process_answers(tmp_path: Path) -> None:
    """A process publishes what it answers before answering: the next answer, from another
    process, sees at least that much, even before any snapshot thread has run."""
    a, b = worker(tmp_path), worker(tmp_path)
    count(a, 5)
    assert requests_total(a) == 5
    assert requests_total(b) == 5  # a's live counts were published when a answered
    seen = []
    for i in range(20):
        count(a if i % 3 else b, i)
        seen.append(requests_total(b if i % 2 else a))
    assert seen == sorted(seen)
    assert seen[-1] < 5 + sum(range(20))  # a counted 19 more and has not published them yet
    assert requests_total(a) == requests_total(b) == 5 + sum(range(20))


def test_corrupt_partial_and_foreign_files_are_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    good = worker(tmp_path)
    count(good, 2)
    assert good.share is not None
    good.share.publish(good.counts)
    whole = (tmp_path / good.share.name).read_bytes()
    (tmp_path / "1-partial.json").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "2-garbage.json").write_bytes(b"\x00\xff not json")
    (tmp_path / "3-shape.json").write_text('{"samples": [["authsvc_tokenreview_requests", "allow", 5]]}')
    (tmp_path / "4-nan.json").write_text('{"samples": [["authsvc_tokenreview_requests", ["allow", "x"], NaN]]}')
    (tmp_path / "5-negative.json").write_text('{"samples": [["authsvc_tokenreview_requests", ["allow", "x"], -9]]}')
    (tmp_path / "6-list.json").write_text("[1, 2, 3]")
    (tmp_path / "7-directory.json").mkdir()
    (tmp_path / ".8-in-progress.json.tmp").write_bytes(whole)  # a writer's temp file: not a snapshot
    (tmp_path / "notes.txt").write_text("not a snapshot")
    scraper = worker(tmp_path)
    with caplog.at_level(logging.WARNING, logger="authsvc.metrics.share"):
        assert requests_total(scraper) == 2
    ignored = {record.getMessage().split()[2] for record in caplog.records}
    assert ignored == {
        f"{n}.json" for n in ("1-partial", "2-garbage", "3-shape", "4-nan", "5-negative", "6-list", "7-directory")
    }
    assert read_snapshot(tmp_path / "2-garbage.json") is None


def test_a_snapshot_is_written_only_when_a_counter_moved(tmp_path: Path) -> None:
    metrics = worker(tmp_path)
    assert metrics.share is not None
    metrics.share.publish(metrics.counts)
    assert list(tmp_path.iterdir()) == []  # nothing counted: nothing to write
    count(metrics, 1)
    metrics.share.publish(metrics.counts)
    snapshot = tmp_path / metrics.share.name
    first = snapshot.stat().st_ino
    metrics.share.publish(metrics.counts)
    assert snapshot.stat().st_ino == first  # unchanged: not rewritten
    count(metrics, 1)
    metrics.share.publish(metrics.counts)
    assert snapshot.stat().st_ino != first  # replaced whole (rename), never rewritten in place
    assert [path.name for path in tmp_path.iterdir()] == [metrics.share.name]  # no temp file left
    assert snapshot.stat().st_mode & 0o777 == 0o600
    assert read_snapshot(snapshot) == {key: value for key, value in metrics.counts().items()}


def test_a_write_error_is_logged_and_the_answer_still_given(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    metrics = worker(tmp_path / "gone")  # `serve` removed the directory at exit, say
    count(metrics, 3)
    with caplog.at_level(logging.WARNING, logger="authsvc.metrics.share"):
        assert requests_total(metrics) == 3
    assert any("not written" in record.getMessage() for record in caplog.records)


def run_program(program: str, directory: Path) -> str:
    """`program` in a Python process of its own (from the repository, so that it can import
    tests.components.support); fails the test unless it exits 0; its snapshot's name."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(program)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    name = done.stdout.strip()
    assert os.listdir(directory) == [name]
    return name


def test_the_thread_publishes_while_the_process_runs_and_when_it_ends(tmp_path: Path) -> None:
    """A real process: counts, waits for the thread's first snapshot, counts again and ends at
    once; the second count is in the directory all the same (the thread's last write)."""
    name = run_program(
        f"""
        import sys
        from pathlib import Path
        from authsvc.metrics.server import ServerMetrics
        from authsvc.metrics.share import SnapshotShare
        from tests.components.support import eventually
        share = SnapshotShare(Path({str(tmp_path)!r}))
        metrics = ServerMetrics(share=share)
        share.publish_until_exit(metrics.counts, seconds=0.05)
        metrics.request("allow", "tokenfile", 0.001, cached=False)
        if not eventually((share.directory / share.name).exists, bool, timeout=60, interval=0.01):
            sys.exit("the thread wrote no snapshot while the process ran")
        metrics.request("deny", "", 0.001, cached=False)
        print(share.name)
        """,
        tmp_path,
    )
    snapshot = read_snapshot(tmp_path / name)
    assert snapshot is not None
    assert snapshot[("authsvc_tokenreview_requests", ("allow", "tokenfile"))] == 1
    assert snapshot[("authsvc_tokenreview_requests", ("deny", ""))] == 1


def test_counts_taken_just_before_the_process_ends_are_not_its_last_snapshot(tmp_path: Path) -> None:
    """The race that made the test above flaky on a busy machine: the thread takes the counts,
    the process counts once more and ends, then the thread writes what it took. Its next look
    sees the process gone; it must still publish once more, after the end."""
    name = run_program(
        f"""
        import threading
        from pathlib import Path
        from authsvc.metrics.server import ServerMetrics
        from authsvc.metrics.share import SnapshotShare
        share = SnapshotShare(Path({str(tmp_path)!r}))
        metrics = ServerMetrics(share=share)
        metrics.request("allow", "tokenfile", 0.001, cached=False)
        go, raced = threading.Event(), []

        def counts():
            taken = metrics.counts()
            if not raced:  # the first time only: let the process count and end, then return
                raced.append(True)
                go.set()
                threading.main_thread().join()
            return taken

        share.publish_until_exit(counts, seconds=0.05)
        go.wait()
        metrics.request("deny", "", 0.001, cached=False)
        print(share.name)
        """,
        tmp_path,
    )
    snapshot = read_snapshot(tmp_path / name)
    assert snapshot is not None
    assert snapshot[("authsvc_tokenreview_requests", ("allow", "tokenfile"))] == 1
    assert snapshot.get(("authsvc_tokenreview_requests", ("deny", ""))) == 1


def test_without_a_directory_the_app_counts_alone(tmp_path: Path) -> None:
    alone = ServerMetrics()
    count(alone, 2)
    assert requests_total(alone) == 2
    assert list(tmp_path.iterdir()) == []
