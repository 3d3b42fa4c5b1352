#!/usr/bin/env bash
# Adds an Alembic revision for what changed in the models:
#
#   scripts/new-migration.sh "add bootstrap tokens"
#
# Upgrades a scratch SQLite database to the current head, autogenerates the difference
# between it and the tables that authsvc.db.tables imports, names the revision with the next
# sequential id (0001, 0002, ...) and writes that id into authsvc/db/migrations/head.py (the
# constant the check at start compares with). Read the new file before committing: types,
# indexes, server defaults, and data migrations autogenerate cannot guess.
# tests/db/test_migrations.py fails while models and migrations disagree.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: $0 \"what changed\"" >&2
  exit 2
fi
py=.venv/bin/python
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
alembic() { "$py" -m alembic -c authsvc/db/migrations/alembic.ini -x "url=sqlite:///$scratch/scratch.db" "$@"; }

alembic upgrade head >/dev/null
if alembic check >/dev/null 2>&1; then
  echo "new-migration: the migrations already match the models; nothing to generate" >&2
  exit 0
fi
current="$(alembic heads | awk '{print $1}')"
if [ "$(printf '%s\n' "$current" | grep -c .)" -gt 1 ]; then
  echo "new-migration: several heads ($current): merge them first (alembic merge)" >&2
  exit 1
fi
next="$(printf '%04d' $((10#${current:-0} + 1)))"
alembic revision --autogenerate --rev-id "$next" -m "$1"
sed -i "s/^HEAD = .*/HEAD = \"$next\"/" authsvc/db/migrations/head.py
new_file="$(ls authsvc/db/migrations/versions/m"${next}"_*.py)"
.venv/bin/ruff check --fix --quiet "$new_file" || true
.venv/bin/ruff format --quiet "$new_file"
echo "new-migration: wrote $new_file (head is now $next); review it, then run .venv/bin/pytest tests/db"
