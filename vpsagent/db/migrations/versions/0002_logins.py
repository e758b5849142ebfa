"""logins: users with roles, login codes bound to an attempt, sessions and API tokens in use,
database settings (auth mode), and who ran each command in the audit log

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

Upgrades a database made by the first release in place: every server, credential,
conversation, test run and audit row stays as it was (old audit rows keep hash version
v1 and verify as before). `otp_codes` is rebuilt: the first release never wrote it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("users") as t:
        t.add_column(sa.Column("name", sa.String(200), nullable=False, server_default=""))
        t.add_column(sa.Column("role", sa.String(20), nullable=False, server_default="viewer"))
        t.add_column(sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false()))

    op.drop_table("otp_codes")
    op.create_table(
        "otp_codes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
        sa.Column("attempt", sa.String(64), nullable=False),
        sa.Column("code_hash", sa.String(128), nullable=False),
        sa.Column("state", sa.String(20), nullable=False, server_default="pending"),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("expires_at", UTC, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("used_at", UTC, nullable=True),
    )
    op.create_index("ix_otp_codes_email", "otp_codes", ["email"])
    op.create_index("ix_otp_codes_attempt", "otp_codes", ["attempt"])

    with op.batch_alter_table("sessions") as t:
        t.add_column(sa.Column("last_used_at", UTC, nullable=True))
    with op.batch_alter_table("api_tokens") as t:
        t.add_column(sa.Column("role", sa.String(20), nullable=False, server_default="viewer"))

    op.create_table(
        "db_settings",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.String(1000), nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.Column("updated_by", sa.String(320), nullable=True),
    )

    with op.batch_alter_table("command_history") as t:
        t.add_column(sa.Column("user_email", sa.String(320), nullable=True))
        t.add_column(sa.Column("token_name", sa.String(200), nullable=True))
        t.add_column(sa.Column("hash_version", sa.String(8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("command_history") as t:
        t.drop_column("hash_version")
        t.drop_column("token_name")
        t.drop_column("user_email")
    op.drop_table("db_settings")
    with op.batch_alter_table("api_tokens") as t:
        t.drop_column("role")
    with op.batch_alter_table("sessions") as t:
        t.drop_column("last_used_at")
    op.drop_index("ix_otp_codes_attempt", table_name="otp_codes")
    op.drop_index("ix_otp_codes_email", table_name="otp_codes")
    op.drop_table("otp_codes")
    op.create_table(
        "otp_codes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("code_hash", sa.String(128), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("expires_at", UTC, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("used_at", UTC, nullable=True),
    )
    op.create_index("ix_otp_codes_email", "otp_codes", ["email"])
    with op.batch_alter_table("users") as t:
        t.drop_column("disabled")
        t.drop_column("role")
        t.drop_column("name")
