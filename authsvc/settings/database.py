"""`database:` section: where the inventory lives."""

from __future__ import annotations

from authsvc.settings.fields import Section


class DatabaseSettings(Section):
    # Empty: SQLite file `authsvc.db` inside the home. Any SQLAlchemy URL otherwise, e.g.
    # postgresql+psycopg://authsvc@db/authsvc (password from url_env / url_file, not here).
    url: str = ""
    url_env: str | None = None
    url_file: str | None = None
