"""server_locks: `--lock` on run, test run and apply — one holder per server, a renewed lease

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "server_locks",
        sa.Column("server", sa.String(200), primary_key=True),
        sa.Column("holder", sa.String(500), nullable=False),
        sa.Column("hostname", sa.String(255), nullable=False, server_default=""),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("expires_at", UTC, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("server_locks")
