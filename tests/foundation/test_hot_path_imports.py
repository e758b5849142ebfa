"""The `run` hot path (and `servers check`) reads the tables through SQLAlchemy Core
reflected from the migrated database (db/core.py): no sqlmodel, pydantic or db.models
import, ~0.18 s less per process (bench/README.md, issue 3's 50-server target).

Rows written that way must be the same rows the ORM writes and reads: aware UTC
timestamps, JSON tags as lists, and an audit chain that verifies whichever table
object wrote or reads it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.sshd import register_sshd

ORM_MODULES = ("sqlmodel", "pydantic", "vpsagent.db.models", "alembic")

# Runs the CLI in a fresh interpreter (as `python -m vpsagent` would) and reports on
# stderr what it imported.
PROBE = (
    "import sys, json\n"
    "from vpsagent.cli import execute\n"
    "rc = execute(sys.argv[1:])\n"
    "sys.stdout.flush()\n"
    f"mods = sorted(m for m in {ORM_MODULES!r} if m in sys.modules)\n"
    "print(json.dumps({'rc': rc, 'orm': mods}), file=sys.stderr)\n"
)


def probe(*args: str) -> dict:
    p = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                       env=dict(os.environ), timeout=120)
    assert p.returncode == 0, p.stderr
    return dict(json.loads(p.stderr.strip().splitlines()[-1]), out=p.stdout)


def history(engine) -> list[dict]:
    from vpsagent.db.audit import iter_rows

    return list(iter_rows(engine))


def test_run_local_imports_no_orm_and_still_audits(engine):
    # `engine` has migrated the database: the process under test only reads the schema
    r = probe("run", "-s", "local", "echo hot-path")
    assert r == {"rc": 0, "orm": [], "out": "hot-path\n"}
    rows = history(engine)
    assert [(x["server"], x["command"], x["status"], x["exit_code"]) for x in rows] == [
        ("local", "echo hot-path", "ok", 0)]
    assert rows[0]["row_hash"] and rows[0]["done_hash"]


def test_run_over_ssh_with_stored_key_imports_no_orm(engine, keyring, sshd):
    register_sshd(engine, keyring, sshd, "t1", tags=["web"])
    register_sshd(engine, keyring, sshd, "t2", address="127.0.0.2", tags=["web"])
    r = probe("run", "-t", "web", "echo via-ssh")  # tag selection, key decryption, two audit rows each
    assert r["rc"] == 0 and r["orm"] == []
    assert sorted(r["out"].splitlines()) == ["t1 | via-ssh", "t2 | via-ssh"]
    assert sorted((x["server"], x["status"]) for x in history(engine)) == [("t1", "ok"), ("t2", "ok")]


def test_servers_check_pins_through_core(engine, keyring, sshd, settings):
    from vpsagent.services.servers import show_server

    register_sshd(engine, keyring, sshd, "t1", pin=False)
    before = show_server(engine, "t1")
    assert before.host_key_fingerprint is None
    r = probe("servers", "check", "t1")
    assert r["rc"] == 0 and r["orm"] == []
    after = show_server(engine, "t1")  # read back through the ORM's view of the row
    assert after.host_key_fingerprint == sshd.host_key_fingerprint
    assert after.updated_at is not None and after.updated_at.tzinfo is not None
    assert after.updated_at >= before.updated_at


def test_generated_tables_are_current():
    """db/tables.py is generated from db/models.py; a model change must regenerate it."""
    root = Path(__file__).resolve().parents[2]
    p = subprocess.run([sys.executable, str(root / "scripts" / "gentables.py"), "--check"], capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stderr


def test_core_tables_match_the_models(engine, keyring, sshd):
    from sqlalchemy import select

    from vpsagent.db.engine import transaction
    from vpsagent.db.models import Server, SQLModel
    from vpsagent.db.tables import TABLES
    from vpsagent.db.tables import servers as t

    register_sshd(engine, keyring, sshd, "t1", tags=["b", "a"])
    with transaction(engine) as conn:
        core_row = conn.execute(select(t).where(t.c.name == "t1")).one()
        orm_row = conn.execute(select(Server.__table__).where(Server.__table__.c.name == "t1")).one()
    assert core_row.tags == ["a", "b"] == orm_row.tags  # JSON comes back as a list on both databases
    assert core_row.created_at == orm_row.created_at and core_row.created_at.utcoffset() == timedelta(0)
    # every table and column of the models, and nothing else
    assert {n: set(tb.c.keys()) for n, tb in TABLES.items()} == {
        n: set(tb.c.keys()) for n, tb in SQLModel.metadata.tables.items()}
    # naive datetimes are refused, as by the models
    from sqlalchemy import update
    from sqlalchemy.exc import StatementError

    with pytest.raises(StatementError):
        with transaction(engine) as conn:
            conn.execute(update(t).where(t.c.name == "t1").values(updated_at=datetime(2026, 1, 1)))


def test_audit_rows_verify_whichever_table_wrote_them(engine, monkeypatch):
    """Rows written through the model's table and through the Core one form one chain."""
    from vpsagent.db import audit
    from vpsagent.db.models import CommandHistory
    from vpsagent.remote.local import LocalHost
    from vpsagent.services.fleet import run_audited

    host = LocalHost()
    log = audit.AuditLog(engine)
    run_audited(log, host, "echo core-1", source="run")  # Core table
    with monkeypatch.context() as m:  # the model's table object
        m.setattr(audit, "history_table", lambda: CommandHistory.__table__)
        run_audited(log, host, "echo orm-2", source="run")
        log.record_decision(server="local", command="echo orm-3", source="ask", decision="denied",
                            reason="test")
        assert audit.verify(engine).ok  # read through the model's table
    run_audited(log, host, "echo core-4", source="run")
    res = audit.verify(engine)  # read through the Core table
    assert res.ok and res.checked == 4
    rows = history(engine)
    assert [r["command"] for r in rows] == ["echo core-1", "echo orm-2", "echo orm-3", "echo core-4"]
    assert all(r["started_at"].tzinfo is not None and r["started_at"] <= datetime.now(UTC) for r in rows)
    # an edited row is still caught
    from sqlalchemy import update

    from vpsagent.db.engine import transaction
    from vpsagent.db.tables import command_history as t

    with transaction(engine) as conn:
        conn.execute(update(t).where(t.c.id == rows[1]["id"]).values(command="echo edited"))
    bad = audit.verify(engine)
    assert not bad.ok and bad.first_bad_id == rows[1]["id"]


def test_concurrent_audit_writes_are_grouped_and_a_bad_row_fails_alone(engine):
    """Writes queued by fan-out threads share transactions (group commit); one row the
    database refuses (a conversation that does not exist) fails only its own command."""
    import threading

    from vpsagent import errors
    from vpsagent.db import audit
    from vpsagent.remote.local import LocalHost
    from vpsagent.services.fleet import run_audited

    log = audit.AuditLog(engine)
    gate = threading.Barrier(24)
    results: dict[int, object] = {}

    def work(i: int) -> None:
        gate.wait()
        try:
            results[i] = run_audited(log, LocalHost(), f"echo {i}", source="run",
                                           conversation_id=999_999 if i == 7 else None)
        except errors.DatabaseError as exc:
            results[i] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert isinstance(results[7], errors.DatabaseError) and "cannot write the audit log" in str(results[7])
    assert all(results[i].ok for i in range(24) if i != 7)  # type: ignore[attr-defined]
    rows = history(engine)
    assert sorted(r["command"] for r in rows) == sorted(f"echo {i}" for i in range(24) if i != 7)
    assert all(r["status"] == "ok" and r["done_hash"] for r in rows)
    res = audit.verify(engine)
    assert res.ok and res.checked == 23


def test_test_run_imports_no_orm_and_records_the_run(engine, tmp_path):
    """`test run` records test_runs/test_steps through the Core tables: importing sqlmodel,
    pydantic and the models was ~0.15 s of every run (issue 10, item 20)."""
    from sqlalchemy import text

    plan = tmp_path / "p.yaml"
    plan.write_text("name: hot\nservers: [local]\nsteps:\n  - run: echo one\n  - run: 'false'\n")
    r = probe("test", "run", str(plan), "--format", "json")
    assert r["rc"] == 1 and r["orm"] == []
    with engine.connect() as c:
        run = c.execute(text("SELECT * FROM test_runs")).mappings().one()
        steps = c.execute(text("SELECT seq, status, command FROM test_steps ORDER BY seq")).all()
    assert (run["status"], run["passed"], run["failed"], run["errors"]) == ("failed", 1, 1, 0)
    assert run["finished_at"] is not None and run["duration_ms"] is not None
    assert [tuple(s) for s in steps] == [(1, "passed", "echo one"), (2, "failed", "false")]
    # and the ORM reads what Core wrote (test history / test show use the models)
    from vpsagent.services.testing import history as test_history

    [h] = test_history(engine)
    assert h["status"] == "failed" and h["servers"] == ["local"] and h["started_at"]
