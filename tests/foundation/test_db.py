"""Schema migrations, engine settings and database failures, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from vpsagent.db.engine import KNOWN_REVISIONS, SCHEMA_HEAD


def test_schema_is_migrated_on_first_use(engine):
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == SCHEMA_HEAD
        tables = set(sa.inspect(conn).get_table_names())
    assert {"users", "otp_codes", "sessions", "api_tokens", "servers", "conversations", "messages",
            "test_runs", "test_steps", "github_integrations", "deploys", "deploy_locks", "deploy_secrets", "server_locks", "plans", "plan_applications", "command_history"} <= tables


def test_code_constants_match_shipped_revisions():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__import__("vpsagent").__file__).parent / "db" / "migrations"))
    script = ScriptDirectory.from_config(cfg)
    assert script.get_current_head() == SCHEMA_HEAD
    assert {r.revision for r in script.walk_revisions()} == set(KNOWN_REVISIONS)


def test_models_and_migration_agree(engine):
    """A model change without a migration shows up here as a diff."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    import vpsagent.db.models  # noqa: F401

    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == []


def test_sqlite_pragmas(settings, engine):
    if engine.dialect.name != "sqlite":
        assert engine.dialect.driver == "psycopg"
        return
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_two_processes_migrating_at_once(home, settings):
    """Fresh processes race to create the schema; all succeed, one schema results."""
    code = "from vpsagent.cli import execute; import sys; sys.exit(execute(['servers', 'list', '--json']))"
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [o[1].decode() for o in outs]
    from vpsagent.db.engine import get_engine

    with get_engine(settings).connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar() == 1


def test_schema_newer_than_code_is_refused(cli, engine):
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    from vpsagent.db.engine import dispose_engines

    dispose_engines()
    r = cli("servers", "list")
    assert r.exit_code == 1
    assert "newer than this vpsagent" in r.stderr and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1
    r = cli("db", "current", "--json")
    assert r.json()["data"]["revision"] == "9999"


def test_unreachable_database_url(cli):
    # an explicit SQLite path in a missing directory is bad input (exit 2), not created
    for url, code in [("postgresql://nobody@127.0.0.1:1/none", 1), ("sqlite:////proc/no/such/dir/x.db", 2)]:
        r = cli("servers", "list", env={"DATABASE_URL": url})
        assert r.exit_code == code, r.stderr
        assert r.stderr.startswith("error: ") and "Traceback" not in r.stderr
        assert r.stderr.count("\n") == 1
    r = cli("servers", "list", "--json", env={"DATABASE_URL": "postgresql://u:pw-secret@127.0.0.1:1/x"})
    doc = r.json()
    assert doc["ok"] is False and doc["errors"][0]["code"] == "database"
    assert "pw-secret" not in r.stdout + r.stderr


def test_db_upgrade_and_current(cli):
    r = cli("db", "upgrade", "--json")
    assert r.exit_code == 0 and r.json()["data"]["revision"] == SCHEMA_HEAD
    r = cli("db", "current")
    assert r.exit_code == 0 and f"schema {SCHEMA_HEAD} (current)" in r.stdout
