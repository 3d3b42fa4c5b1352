"""/metrics of the real `authsvc serve` (granian, TLS, 2 workers per listener): the run's totals.

Each worker is a process with its own counters, and a scrape reaches whichever worker accepts
the connection. Whatever process answers, on the webhook listener or the public one, every
answer must be the sum over all of them (once their snapshots are written, within a second),
and no answer may be below the one before it: Prometheus reads a drop as a counter reset.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.components.support import eventually, free_port, log_tail
from tests.conftest import run_cli
from tests.serve.support import authsvc_serve

T = TypeVar("T")
TOKEN = "metrics-static-token-0123456789abcdef"
REQUESTS = "authsvc_tokenreview_requests_total"
WORKERS = 2
# Reviews sent at once, each on a connection of its own, so that both workers take some.
CONCURRENCY = 8
ROUNDS = 6
SETTLE_SECONDS = 15.0
OK, REFUSED = (
    "authsvc_login_attempts_total{'result': 'ok'}",
    "authsvc_login_attempts_total{'result': 'refused'}",
)  # a deadline for the snapshots (written within a second), not a sleep


@dataclass
class Run:
    home: Path
    tmpdir: Path  # the server's $TMPDIR: where `serve` makes the run's metrics directory
    webhook: int
    public: int
    apiserver: ssl.SSLContext
    scrapes: list[tuple[str, float]] = field(default_factory=list)  # (listener, requests total), in order

    def review(self) -> dict[str, object]:
        body = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": TOKEN}})
        connection = http.client.HTTPSConnection("127.0.0.1", self.webhook, context=self.apiserver, timeout=15)
        try:
            connection.request("POST", "/authenticate", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            assert response.status == 200
            status: dict[str, object] = json.loads(response.read())["status"]
            return status
        finally:
            connection.close()

    def scrape(self, listener: str) -> dict[str, float]:
        """One /metrics answer on a fresh connection: {sample name{labels}: value}."""
        if listener == "webhook":
            connection = http.client.HTTPSConnection("127.0.0.1", self.webhook, context=self.apiserver, timeout=15)
        else:
            context = ssl.create_default_context(cafile=str(self.home / "pki/ca.crt"))  # no client certificate
            connection = http.client.HTTPSConnection("127.0.0.1", self.public, context=context, timeout=15)
        try:
            connection.request("GET", "/metrics")
            response = connection.getresponse()
            assert response.status == 200
            text = response.read().decode()
        finally:
            connection.close()
        samples = {
            f"{sample.name}{dict(sorted(sample.labels.items()))}": sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }
        self.scrapes.append((listener, total(samples, REQUESTS)))
        return samples

    def metrics_directories(self) -> list[Path]:
        return sorted(self.tmpdir.glob("authsvc-metrics-*"))


def total(samples: dict[str, float], name: str) -> float:
    return sum(value for key, value in samples.items() if key.split("{", 1)[0] == name)


def _configure(home: Path) -> None:
    (home / "tokens.csv").write_text(f'{TOKEN},alice,u-1,"dev"\n')
    config_file = home / "authsvc.yaml"
    config = yaml.safe_load(config_file.read_text())
    config["authn"].update(chain=["tokenfile"], tokenfile={"path": "tokens.csv"})
    config["login"]["backends"] = ["users"]
    config_file.write_text(yaml.safe_dump(config))
    added = run_cli(["users", "add", "carol", "--password-stdin"], home=home, input="carol-pw\n")
    assert added.exit_code == 0, added.stderr


def _apiserver_context(home: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(home / "pki/ca.crt"))
    client = home / "pki/authsvc"
    context.load_cert_chain(str(client / "apiserver-webhook-client.crt"), str(client / "apiserver-webhook-client.key"))
    return context


@contextlib.contextmanager
def serving(home_template: Path, root: Path) -> Iterator[tuple[Run, subprocess.Popen[bytes]]]:
    """`authsvc serve` with both listeners, 2 workers each, in a session of its own."""
    home, tmpdir = root / "home", root / "tmp"
    shutil.copytree(home_template, home)
    tmpdir.mkdir()
    _configure(home)
    run = Run(home, tmpdir, free_port(), free_port(), _apiserver_context(home))
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    with authsvc_serve(
        home, root / "serve.log", webhook=run.webhook, public=run.public, workers=WORKERS, env=env
    ) as process:
        yield run, process


def poll(probe: Callable[[], T], done: Callable[[T], bool]) -> T:
    return eventually(probe, done, timeout=SETTLE_SECONDS, interval=0.05)


def send_reviews(run: Run) -> int:
    """ROUNDS x CONCURRENCY TokenReviews, each on a fresh connection, CONCURRENCY at a time."""
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        for _ in range(ROUNDS):
            answers = list(pool.map(lambda _: run.review(), range(CONCURRENCY)))
            assert all(answer["authenticated"] is True for answer in answers)
    return ROUNDS * CONCURRENCY


def alternate(run: Run) -> Callable[[], float]:
    """A probe scraping the webhook listener and the public one in turn."""
    turn = iter(range(10**6))

    def probe() -> float:
        return total(run.scrape("webhook" if next(turn) % 2 else "public"), REQUESTS)

    return probe


def snapshot_request_counts(directory: Path) -> list[float]:
    """Per snapshot file (one per process that counted), its TokenReview requests."""
    counts = []
    for path in sorted(directory.glob("*.json")):
        samples = json.loads(path.read_text())["samples"]
        counts.append(sum(value for name, _, value in samples if name == "authsvc_tokenreview_requests"))
    return counts


@pytest.fixture(scope="module")
def served(home_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    with serving(home_template, tmp_path_factory.mktemp("metrics")) as (run, _):
        yield run


def test_every_scrape_on_either_listener_counts_every_worker(served: Run) -> None:
    sent = send_reviews(served)
    first = poll(alternate(served), lambda seen: seen == sent)
    assert first == sent, f"a /metrics answer counted {first} of {sent} TokenReviews: {served.scrapes[-4:]}"
    for _ in range(12):  # fresh connections: each may reach another worker of either listener
        for listener in ("webhook", "public"):
            samples = served.scrape(listener)
            assert total(samples, REQUESTS) == sent, (listener, served.scrapes[-4:])
            assert samples["authsvc_tokenreview_duration_seconds_count{}"] == sent
            assert total(samples, "authsvc_tokenreview_cache_total") == sent
    totals = [value for _, value in served.scrapes]
    assert totals == sorted(totals), f"a scrape went down: {served.scrapes}"
    # Not vacuous: more than one webhook worker answered (one snapshot per worker that counted).
    (directory,) = served.metrics_directories()
    assert len([n for n in snapshot_request_counts(directory) if n]) >= 2, snapshot_request_counts(directory)


def test_scrapes_never_go_down_while_reviews_arrive(served: Run) -> None:
    """Scrapes in a row, while TokenReviews keep arriving at both workers: each answer at least
    the one before, wherever it was answered (the other workers' counts up to a second late)."""
    before = total(served.scrape("public"), REQUESTS)
    served.scrapes.clear()
    with ThreadPoolExecutor(1) as pool:
        sending = pool.submit(send_reviews, served)
        while not sending.done():
            alternate(served)()
        sent = sending.result()
    after = poll(alternate(served), lambda seen: seen == before + sent)
    assert after == before + sent
    totals = [value for _, value in served.scrapes]
    assert len(totals) > 4 and totals == sorted(totals), f"a scrape went down: {served.scrapes}"


def test_login_counters_are_the_runs_too(served: Run) -> None:
    """/login is answered by the public listener's workers; a scrape of the webhook listener
    counts those logins as well (same snapshots)."""
    ca = str(served.home / "pki/ca.crt")
    public = f"https://127.0.0.1:{served.public}"
    assert requests.post(f"{public}/login", auth=("carol", "carol-pw"), verify=ca, timeout=15).status_code == 200
    assert requests.post(f"{public}/login", auth=("carol", "nope"), verify=ca, timeout=15).status_code == 401

    def logins() -> tuple[float, float]:
        samples = served.scrape("webhook")
        return samples.get(OK, 0.0), samples.get(REFUSED, 0.0)

    assert poll(logins, lambda seen: seen == (1, 1)) == (1, 1)


def test_the_run_directory_is_private_and_removed_at_exit(home_template: Path, tmp_path: Path) -> None:
    with serving(home_template, tmp_path) as (run, process):
        (directory,) = run.metrics_directories()
        assert directory.stat().st_mode & 0o777 == 0o700
        run.review()
        written = poll(lambda: float(len(list(directory.glob("*.json")))), lambda n: n >= 1)
        assert written >= 1
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
        assert process.returncode == 0, log_tail(tmp_path / "serve.log")
    assert run.metrics_directories() == []


def test_one_worker_without_a_public_listener_needs_no_directory(home_template: Path, tmp_path: Path) -> None:
    """Nothing to sum: the process counts alone, as an app built in-process does."""
    home = tmp_path / "home"
    shutil.copytree(home_template, home)
    _configure(home)
    config = yaml.safe_load((home / "authsvc.yaml").read_text())
    config.setdefault("server", {})["public_bind"] = ""  # whatever the template says
    (home / "authsvc.yaml").write_text(yaml.safe_dump(config))
    tmpdir, stale, port = tmp_path / "tmp", tmp_path / "stale", free_port()
    tmpdir.mkdir()
    stale.mkdir()  # left in the environment by an earlier run: never used
    env = {**os.environ, "TMPDIR": str(tmpdir), "AUTHSVC_METRICS_DIR": str(stale)}
    with authsvc_serve(home, tmp_path / "serve.log", webhook=port, public=None, env=env):
        run = Run(home, tmpdir, port, 0, _apiserver_context(home))
        run.review()
        assert total(run.scrape("webhook"), REQUESTS) == 1
        assert list(tmpdir.iterdir()) == [] and list(stale.iterdir()) == []
