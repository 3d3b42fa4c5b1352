"""What `authsvc rotate` leaves behind for people and monitoring: an audit line per change, a row
per run in the inventory (`rotation_runs`), and Prometheus metrics, both as a node_exporter
textfile written by the run and as a collector on `authsvc serve`'s /metrics (which reads the
inventory: in Kubernetes the rotate Job and the webhook pods share the database, not files).

    authsvc_rotate_last_run_timestamp_seconds       when the last run finished
    authsvc_rotate_last_success_timestamp_seconds   ... the last run without a failure (exit 0 or 3)
    authsvc_rotate_last_exit_code                   0 all well, 1 a failure, 3 a human must act
    authsvc_rotate_last_run_actions{result}         planned, done, failed, needs_human
    authsvc_rotate_next_expiry_timestamp_seconds    the earliest notAfter of an automatic certificate or CA
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from authsvc.audit import events
from authsvc.audit.events import AuditEvent
from authsvc.errors import AuthsvcError
from authsvc.rotation.runs import RESULTS, RunRecord, last_runs
from pki.store import atomic_write

log = logging.getLogger(__name__)


# --- metrics --------------------------------------------------------------------------------


def metric_families(last: RunRecord | None, success: dt.datetime | None) -> Iterator[GaugeMetricFamily]:
    def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
        return GaugeMetricFamily(f"authsvc_rotate_{name}", doc, value=value)

    if success is not None:
        yield gauge(
            "last_success_timestamp_seconds", "When the last run without a failure finished.", success.timestamp()
        )
    if last is None:
        return
    yield gauge("last_run_timestamp_seconds", "When the last run finished.", last.finished_at.timestamp())
    yield gauge(
        "last_exit_code", "Exit status of the last run: 0 all well, 1 a failure, 3 a human must act.", last.exit_code
    )
    actions = GaugeMetricFamily(
        "authsvc_rotate_last_run_actions", "Actions of the last run, by result.", labels=["result"]
    )
    for name in RESULTS:
        actions.add_metric([name], float(last.counts.get(name, 0)))
    yield actions
    if last.next_expiry is not None:
        yield gauge(
            "next_expiry_timestamp_seconds",
            "Earliest notAfter of an automatic certificate or CA after the last run.",
            last.next_expiry.timestamp(),
        )


class _Families(Collector):
    def __init__(self, families: list[GaugeMetricFamily]) -> None:
        self.families = families

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self.families


def render_metrics(last: RunRecord | None, success: dt.datetime | None) -> bytes:
    registry = CollectorRegistry()
    registry.register(_Families(list(metric_families(last, success))))
    return generate_latest(registry)


def write_textfile(path: Path, engine: Engine) -> None:
    """The node_exporter textfile (0644: node_exporter runs as another user), replaced atomically."""
    atomic_write(path, render_metrics(*last_runs(engine)), 0o644)


class RotationCollector(Collector):
    """The same metrics for `serve`'s /metrics, read from the inventory at most every `ttl` seconds."""

    def __init__(self, engine: Callable[[], Engine], ttl: float = 30.0) -> None:
        self.engine, self.ttl = engine, ttl  # a callable: the database is opened at the first scrape
        self._lock = threading.Lock()
        self._cached: tuple[float, list[GaugeMetricFamily]] | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            if self._cached is None or time.monotonic() - self._cached[0] >= self.ttl:
                try:
                    self._cached = (time.monotonic(), list(metric_families(*last_runs(self.engine()))))
                except (SQLAlchemyError, AuthsvcError) as e:
                    log.warning("rotation metrics unavailable: %s", type(e).__name__)
                    return
            families = self._cached[1]
        yield from families


# --- audit ----------------------------------------------------------------------------------

# Rotation actions that renew a certificate: `cert.renew` in the trail, as `certs renew` writes.
RENEWALS = frozenset({"renew", "reissue"})


def rotation_event(kind: str, target: str, status: str, detail: str, **extra: Any) -> AuditEvent:
    """The audit line of one change rotate made (never a key): `cert.renew` for a renewal (its
    new `serial`, and the serials it `replaces`), `rotation.<kind>` for the rest."""
    action = events.CERT_RENEW if kind in RENEWALS else f"{events.ROTATION_PREFIX}{kind}"
    outcome = events.OK if status == "done" else events.FAILED
    serial = extra.pop("serial", None)
    ids = {"serial": str(serial)} if serial else {}
    details = {"target": target, "detail": detail, **extra}
    reason = detail if outcome == events.FAILED else ""
    subject = target if kind in RENEWALS else None
    return AuditEvent(action, outcome, actor=events.ROTATE, subject=subject, reason=reason, ids=ids, details=details)
