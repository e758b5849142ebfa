"""support reports: what `vpsagent support` collected (bounded, redacted) and found

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "support_reports",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("question", sa.String(2000), nullable=False, server_default=""),
        sa.Column("servers", sa.JSON(), nullable=False),
        sa.Column("since_s", sa.Integer(), nullable=False, server_default="7200"),
        sa.Column("collectors", sa.JSON(), nullable=False),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), sa.ForeignKey("conversations.id", ondelete="SET NULL"),
                  nullable=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column("os_user", sa.String(100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("support_reports")
