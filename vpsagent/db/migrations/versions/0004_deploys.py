"""deploys: what `vpsagent deploy` did per server, its locks, and apps' secret environment values

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

The first release's `deployments` table was never written; `deploys` replaces it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.drop_table("deployments")
    op.create_table(
        "deploys",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False, server_default="deploy"),
        sa.Column("app", sa.String(100), nullable=False),
        sa.Column("repo", sa.String(300), nullable=False, server_default=""),
        sa.Column("ref", sa.String(300), nullable=False, server_default=""),
        sa.Column("sha", sa.String(64), nullable=True),
        sa.Column("environment", sa.String(100), nullable=False, server_default="production"),
        sa.Column("status", sa.String(20), nullable=False, server_default="running"),
        sa.Column("servers", sa.JSON(), nullable=False),
        sa.Column("results", sa.JSON(), nullable=False),
        sa.Column("github_deployment_id", sa.BigInteger(), nullable=True),
        sa.Column("path", sa.String(1024), nullable=False, server_default=""),
        sa.Column("config", sa.String(), nullable=True),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column("user_email", sa.String(320), nullable=True),
        sa.Column("os_user", sa.String(100), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("finished_at", UTC, nullable=True),
    )
    op.create_index("ix_deploys_app", "deploys", ["app"])
    op.create_table(
        "deploy_locks",
        sa.Column("app", sa.String(100), primary_key=True),
        sa.Column("server", sa.String(200), primary_key=True),
        sa.Column("holder", sa.String(500), nullable=False),
        sa.Column("path", sa.String(1024), nullable=False, server_default=""),
        sa.Column("deploy_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
    )
    op.create_table(
        "deploy_secrets",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("app", sa.String(100), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("value_enc", sa.String(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.UniqueConstraint("app", "name", name="uq_deploy_secrets_app_name"),
    )
    op.create_index("ix_deploy_secrets_app", "deploy_secrets", ["app"])


def downgrade() -> None:
    op.drop_index("ix_deploy_secrets_app", table_name="deploy_secrets")
    op.drop_table("deploy_secrets")
    op.drop_table("deploy_locks")
    op.drop_index("ix_deploys_app", table_name="deploys")
    op.drop_table("deploys")
    op.create_table(
        "deployments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("integration_id", sa.Integer(), nullable=True),
        sa.Column("server_id", sa.Integer(), nullable=True),
        sa.Column("server_name", sa.String(200), nullable=False),
        sa.Column("ref", sa.String(300), nullable=False),
        sa.Column("sha", sa.String(64), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("release_path", sa.String(1024), nullable=True),
        sa.Column("github_deployment_id", sa.Integer(), nullable=True),
        sa.Column("log", sa.String(), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("finished_at", UTC, nullable=True),
    )
