"""access bans (`authsvc access revoke`); who revoked a certificate or a token

Revision ID: 0008
Revises: '0007'
Create Date: 2026-12-03 15:57:09.292194
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing revocations keep revoked_by NULL: who made them was not recorded.
    op.create_table(
        "access_bans",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("username", sa.Text(), nullable=False),
        sa.Column("banned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("banned_by", sa.String(length=255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("bindings_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revoked_by", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("revocation_comment", sa.Text(), nullable=True))

    with op.batch_alter_table("revoked_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revoked_by", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("revoked_tokens", schema=None) as batch_op:
        batch_op.drop_column("revoked_by")

    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.drop_column("revocation_comment")
        batch_op.drop_column("revoked_by")

    op.drop_table("access_bans")
