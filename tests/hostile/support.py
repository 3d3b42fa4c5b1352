"""What every hostile case checks besides its answer: nothing leaked, nothing written.

- `HomeState`: a checksum of every file in a home (the audit log and the SQLite files aside:
  SQLite may touch them on a read) and the row count of every table in its database;
  two states compare equal when nothing was written.
- `LogWatch`: the text that log files gained since it was made (server stdout/stderr, audit log).
- `captured_logs`: everything authsvc logs in-process (DEBUG and up, tracebacks included).
- `assert_clean`: no traceback and no token, in full or in part, in the texts given.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, inspect, text

# SQLite's own files change on reads too (WAL index, checkpoints): the row counts speak for them.
SQLITE_SUFFIXES = (".db", ".db-wal", ".db-shm", ".db-journal")
# Shortest fragment of a secret searched for on its own (shorter ones would match by chance).
MIN_FRAGMENT = 16


@dataclass(frozen=True)
class HomeState:
    files: dict[str, str]  # path relative to the home -> SHA-256
    rows: dict[str, int]  # table -> row count

    def changes(self, later: HomeState, *, tables: Collection[str] = ()) -> list[str]:
        """What differs in `later`: files added, removed or changed, row counts (except `tables`)."""
        changed = [
            f"file {p}"
            for p in sorted(self.files.keys() | later.files.keys())
            if self.files.get(p) != later.files.get(p)
        ]
        changed += [
            f"table {t}: {self.rows.get(t)} -> {later.rows.get(t)} rows"
            for t in sorted(self.rows.keys() | later.rows.keys())
            if t not in tables and self.rows.get(t) != later.rows.get(t)
        ]
        return changed


def home_state(root: Path, *, database_url: str | None = None, ignore: Collection[str] = ("audit.log",)) -> HomeState:
    """The state of the home at `root` (its SQLite inventory unless `database_url` names another)."""
    files = {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name not in ignore and not path.name.endswith(SQLITE_SUFFIXES)
    }
    return HomeState(files, table_rows(database_url or f"sqlite:///{root / 'authsvc.db'}"))


def table_rows(database_url: str) -> dict[str, int]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            names = inspect(conn).get_table_names()
            return {name: conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one() for name in names}
    finally:
        engine.dispose()


class LogWatch:
    """Remembers where each log file ends; `new_text()` is what was written after that."""

    def __init__(self, paths: Iterable[Path]) -> None:
        self.offsets = {path: _size(path) for path in paths}

    def new_text(self) -> dict[str, str]:
        texts = {}
        for path, offset in self.offsets.items():
            with path.open("rb") as f:
                f.seek(offset)
                texts[path.name] = f.read().decode("utf-8", "replace")
        return texts


def _size(path: Path) -> int:
    path.touch(exist_ok=True)
    return path.stat().st_size


@contextmanager
def captured_logs(name: str = "authsvc") -> Iterator[io.StringIO]:
    """What `name` and its children log meanwhile, from DEBUG up (Flask logs a view's crash here too:
    the app is Flask("authsvc")); the logger's own handlers and propagation are left alone."""
    logger = logging.getLogger(name)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def secret_fragments(token: str) -> set[str]:
    """The token, and the parts of it that are as secret: a JWT's signature, an opaque token's prefix."""
    fragments = {token}
    if token.count(".") == 2:
        fragments.add(token.rsplit(".", 1)[1])
    else:
        fragments.add(token[:MIN_FRAGMENT])
    return {f for f in fragments if len(f) >= MIN_FRAGMENT or f == token}


def assert_clean(texts: Mapping[str, str], secrets: Iterable[str]) -> None:
    """No traceback and no secret (or a secret's fragment) in any of `texts` (name -> text)."""
    fragments = {f for secret in secrets if secret for f in secret_fragments(secret)}
    for name, content in texts.items():
        assert "Traceback" not in content, f"a traceback in {name}:\n{content[-2000:]}"
        for fragment in fragments:
            assert fragment not in content, f"a token ({fragment[:8]}...) is in {name}"


def one_error_line(stderr: str) -> str:
    """The single line of stderr that explains a refusal (click's usage text around it aside)."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.lower().startswith("error:") or "Error:" in line]
    assert len(lines) == 1, f"expected one error line, got:\n{stderr}"
    return lines[0]
