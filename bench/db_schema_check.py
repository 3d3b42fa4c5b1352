"""What the schema check at start costs (authsvc/db/schema.py), next to what it replaces.

Every CLI command and every server worker opens the database once through Home.engine; the
check must stay at one query. Prints medians in milliseconds, for SQLite and (when the
Debian postgresql binaries are installed) a PostgreSQL on loopback:

    .venv/bin/python bench/db_schema_check.py [--rounds 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa

from authsvc.db.schema import import_models, open_engine, upgrade_database
from pki.db import METADATA, make_engine


def median_ms(action: Callable[[], None], rounds: int) -> float:
    timings = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        timings.append((time.perf_counter() - start) * 1000)
    return statistics.median(timings)


def connect_only(url: str) -> None:
    engine = make_engine(url)
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    engine.dispose()


def checked_open(url: str) -> None:
    open_engine(url).dispose()


def measure(label: str, url: str, fresh_url: Callable[[], str], rounds: int) -> None:
    upgrade_database(url)
    plain = median_ms(lambda: connect_only(url), rounds)
    checked = median_ms(lambda: checked_open(url), rounds)
    migrate = median_ms(lambda: checked_open(fresh_url()), max(3, rounds // 5))

    def create_all() -> None:
        engine = make_engine(fresh_url())
        METADATA.create_all(engine)
        engine.dispose()

    created = median_ms(create_all, max(3, rounds // 5))
    print(
        f"{label:10} open+SELECT 1 {plain:7.2f} ms | open+schema check {checked:7.2f} ms "
        f"(+{checked - plain:5.2f}) | empty db: migrations {migrate:7.1f} ms vs create_all {created:7.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    rounds = parser.parse_args().rounds
    import_models()
    folder = Path(tempfile.mkdtemp(prefix="bench-db-"))
    counter = iter(range(10**6))
    measure("sqlite", f"sqlite:///{folder / 'head.db'}", lambda: f"sqlite:///{folder / f'{next(counter)}.db'}", rounds)
    try:
        from tests.components.postgres import Postgres

        server = Postgres().start()
    except (FileNotFoundError, RuntimeError) as e:
        print(f"postgresql: skipped ({e})")
        return
    try:

        def fresh_pg() -> str:
            server.reset_database()
            return server.url

        measure("postgresql", server.url, fresh_pg, rounds)
    finally:
        server.close()


if __name__ == "__main__":
    main()
