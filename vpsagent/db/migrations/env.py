"""Alembic environment: always run with a connection handed in by vpsagent.db.engine."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import vpsagent.db.models  # noqa: F401  (registers every table on the metadata)

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - we never run alembic from its own CLI
    raise RuntimeError("vpsagent migrations run through `vpsagent db upgrade`")

context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
