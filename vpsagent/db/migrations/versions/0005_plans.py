"""plans: change plans vpsagent wrote, showed or applied (by content hash), and their applications

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "plans",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("path", sa.String(2048), nullable=False),
        sa.Column("request", sa.String(2000), nullable=False, server_default=""),
        sa.Column("model", sa.String(100), nullable=False, server_default=""),
        sa.Column("conversation_id", sa.Integer(), sa.ForeignKey("conversations.id", ondelete="SET NULL"),
                  nullable=True),
        sa.Column("servers", sa.JSON(), nullable=False),
        sa.Column("steps", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("content", sa.String(), nullable=False, server_default=""),
        sa.Column("origin", sa.String(20), nullable=False, server_default="show"),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column("user_email", sa.String(320), nullable=True),
        sa.Column("os_user", sa.String(100), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("seen_at", UTC, nullable=False),
        sa.UniqueConstraint("hash", "path", name="uq_plans_hash_path"),
    )
    op.create_index("ix_plans_hash", "plans", ["hash"])
    op.create_index("ix_plans_path", "plans", ["path"])
    op.create_table(
        "plan_applications",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("plan_hash", sa.String(64), nullable=False),
        sa.Column("path", sa.String(2048), nullable=False, server_default=""),
        sa.Column("status", sa.String(20), nullable=False, server_default="running"),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("dry_run", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("servers", sa.JSON(), nullable=False),
        sa.Column("results", sa.JSON(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("conversation_id", sa.Integer(), sa.ForeignKey("conversations.id", ondelete="SET NULL"),
                  nullable=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column("user_email", sa.String(320), nullable=True),
        sa.Column("os_user", sa.String(100), nullable=True),
        sa.Column("started_at", UTC, nullable=False),
        sa.Column("finished_at", UTC, nullable=True),
    )
    op.create_index("ix_plan_applications_plan_hash", "plan_applications", ["plan_hash"])


def downgrade() -> None:
    op.drop_index("ix_plan_applications_plan_hash", table_name="plan_applications")
    op.drop_table("plan_applications")
    op.drop_index("ix_plans_path", table_name="plans")
    op.drop_index("ix_plans_hash", table_name="plans")
    op.drop_table("plans")
