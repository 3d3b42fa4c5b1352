"""The inventory database: the schema (open, check, upgrade: Alembic), the tables authsvc adds to
pki's, and the migrations."""
