"""Alembic migrations of the inventory database (SQLite by default, PostgreSQL for replicas).

`authsvc/db/schema.py` runs them (a fresh database is brought to head on first use, `authsvc db
upgrade` moves an older one forward); `scripts/new-migration.sh "message"` adds a revision.
`head.py` holds the newest revision id so that the check at start costs one query.
"""
