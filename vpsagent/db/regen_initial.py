"""Regenerate the initial Alembic revision from models.py (pre-release only).

Until the first release no user database exists, so the schema lives in one
revision, 0001, regenerated from the models: `python -m vpsagent.db.regen_initial`.
After a release, add new revisions with Alembic's autogenerate instead.
"""

from __future__ import annotations

import tempfile
from pathlib import Path


def main() -> None:
    from alembic import command

    from vpsagent.db.engine import _alembic_config, make_engine

    versions = Path(__file__).parent / "migrations" / "versions"
    for old in versions.glob("0001_*.py"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/empty.db")
        with engine.connect() as conn:
            cfg = _alembic_config(conn)
            command.revision(cfg, message="initial schema", autogenerate=True, rev_id="0001")
    (new,) = versions.glob("0001_*.py")
    print(f"wrote {new}")


if __name__ == "__main__":
    main()
