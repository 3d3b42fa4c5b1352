"""sign-ins of the self-service page (self_service_sessions)

Revision ID: 0009
Revises: '0008'
Create Date: 2026-12-03 17:16:09.010245
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "self_service_sessions",
        sa.Column("session_sha256", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=255), nullable=False),
        sa.Column("uid", sa.String(length=255), nullable=False),
        sa.Column("groups_json", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("session_sha256"),
    )
    with op.batch_alter_table("self_service_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_self_service_sessions_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_self_service_sessions_username"), ["username"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("self_service_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_self_service_sessions_username"))
        batch_op.drop_index(batch_op.f("ix_self_service_sessions_expires_at"))

    op.drop_table("self_service_sessions")
