"""The newest migration: compared with the database's alembic_version row at every start.

Written by scripts/new-migration.sh; tests/db/test_migrations.py keeps it equal to the head
of versions/.
"""

from __future__ import annotations

HEAD = "0009"
