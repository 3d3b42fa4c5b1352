"""The `rotation_runs` table: one row per `authsvc rotate` run (what /metrics reports the last of)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Engine, delete, func, insert, or_, select

from authsvc.db.tables import ROTATION_RUNS
from pki.inventory import CERTIFICATES, CertStatus
from pki.profiles import ROOT_CA

RESULTS = ("planned", "done", "failed", "needs_human")


@dataclass(frozen=True, slots=True)
class RunRecord:
    started_at: dt.datetime
    finished_at: dt.datetime
    exit_code: int
    counts: Mapping[str, int]
    next_expiry: dt.datetime | None


def record_run(engine: Engine, run: RunRecord, *, keep: int) -> None:
    """Store the run and forget all but the last `keep` runs (one transaction)."""
    values = {name: int(run.counts.get(name, 0)) for name in RESULTS}
    with engine.begin() as connection:
        connection.execute(
            insert(ROTATION_RUNS).values(
                started_at=run.started_at,
                finished_at=run.finished_at,
                exit_code=run.exit_code,
                next_expiry=run.next_expiry,
                **values,
            )
        )
        floor = connection.execute(
            select(ROTATION_RUNS.c.id).order_by(ROTATION_RUNS.c.id.desc()).offset(keep - 1).limit(1)
        ).scalar()
        if floor is not None:
            connection.execute(delete(ROTATION_RUNS).where(ROTATION_RUNS.c.id < floor))


def last_runs(engine: Engine) -> tuple[RunRecord | None, dt.datetime | None]:
    """The last run, and when the last run without a failure finished."""
    with engine.connect() as connection:
        row = connection.execute(select(ROTATION_RUNS).order_by(ROTATION_RUNS.c.id.desc()).limit(1)).first()
        success = connection.execute(
            select(func.max(ROTATION_RUNS.c.finished_at)).where(ROTATION_RUNS.c.exit_code != 1)
        ).scalar()
    if row is None:
        return None, success
    counts = {name: getattr(row, name) for name in RESULTS}
    return RunRecord(row.started_at, row.finished_at, row.exit_code, counts, row.next_expiry), success


def next_expiry(engine: Engine) -> dt.datetime | None:
    """The earliest notAfter among valid automatic certificates and CAs (what rotate keeps alive)."""
    query = select(func.min(CERTIFICATES.c.not_after)).where(
        CERTIFICATES.c.status == CertStatus.VALID.value,
        or_(CERTIFICATES.c.auto_renew.is_(True), CERTIFICATES.c.profile == ROOT_CA.name),
    )
    with engine.connect() as connection:
        value: dt.datetime | None = connection.execute(query).scalar()
    return value
