"""db/audit.py: rows before and after every command, the hash chain, interrupted rows.

Runs on SQLite and PostgreSQL (the `engine` fixture is parametrized).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import text

from vpsagent import errors
from vpsagent.db.audit import AuditLog, verify
from vpsagent.remote.local import LocalHost
from vpsagent.services.fleet import run_audited


def rows(engine) -> list[dict]:
    with engine.connect() as c:
        return [dict(r) for r in c.execute(text("SELECT * FROM command_history ORDER BY id")).mappings()]


def test_row_is_written_before_the_command_and_completed_after(engine) -> None:
    audit = AuditLog(engine, user="alice")
    seen_during: list[str] = []

    def peek(_chunk: bytes) -> None:
        # the command is running: its row must already be there, status running
        seen_during.extend(r["status"] for r in rows(engine))

    res = run_audited(audit, LocalHost(), "printf out; printf err >&2; exit 3", source="run",
                      on_stdout=peek)
    assert seen_during == ["running"]
    assert res.exit_code == 3
    [r] = rows(engine)
    assert r["status"] == "failed" and r["exit_code"] == 3 and r["source"] == "run"
    assert r["server"] == "local" and r["os_user"] == "alice" and r["pid"] == os.getpid()
    assert r["stdout_bytes"] == 3 and r["stderr_bytes"] == 3
    assert r["stdout_excerpt"] == "out" and r["stderr_excerpt"] == "err"
    assert r["stdout_sha256"] == res.stdout_sha256 and len(r["stdout_sha256"]) == 64
    assert r["finished_at"] is not None and r["duration_ms"] is not None
    assert verify(engine).ok


def test_failed_start_write_means_the_command_does_not_run(tmp_path: Path) -> None:
    from vpsagent.db.engine import make_engine

    # a database without the schema: the INSERT fails
    bare = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    marker = tmp_path / "ran"
    with pytest.raises(errors.DatabaseError, match="cannot write the audit log"):
        run_audited(AuditLog(bare), LocalHost(), f"touch {marker}", source="run")
    assert not marker.exists()
    bare.dispose()


def test_denied_command_is_recorded_not_run(engine) -> None:
    audit = AuditLog(engine)
    rid = audit.record_decision(server="web1", command="rm -rf /srv", source="ask", decision="deny",
                                reason="destructive", conversation_id=None)
    [r] = rows(engine)
    assert r["id"] == rid and r["status"] == "denied" and r["decision"] == "deny"
    assert "destructive" in r["decision_reason"] and r["exit_code"] is None
    # the agent's spelling (host=, rule=) is accepted too
    audit.record_decision(host="web1", command="reboot", source="ask", decision="deny", reason="no", rule="r1")
    assert rows(engine)[1]["decision_reason"] == "no (rule: r1)"
    assert verify(engine).ok


def test_nul_bytes_and_large_output_are_stored_as_bounded_excerpts(engine) -> None:
    res = run_audited(AuditLog(engine), LocalHost(), "head -c 100000 /dev/zero; echo; echo END",
                      source="run")
    assert res.ok
    [r] = rows(engine)
    assert r["stdout_bytes"] == 100005
    assert len(r["stdout_excerpt"]) < 9000 and "bytes cut" in r["stdout_excerpt"]
    assert r["stdout_excerpt"].endswith("END\n") and "\x00" not in r["stdout_excerpt"]
    assert verify(engine).ok


def _three_rows(engine) -> list[int]:
    audit = AuditLog(engine)
    return [run_audited(audit, LocalHost(), f"echo {i}", source="run") and rows(engine)[-1]["id"]
            for i in range(3)]


@pytest.mark.parametrize(
    ("sql", "bad", "why"),
    [
        ("UPDATE command_history SET command = 'echo harmless' WHERE id = {mid}", "mid", "edited"),
        ("UPDATE command_history SET exit_code = 7, status = 'failed' WHERE id = {mid}", "mid", "outcome"),
        ("UPDATE command_history SET stdout_excerpt = 'x' WHERE id = {mid}", "mid", "outcome"),
        ("DELETE FROM command_history WHERE id = {mid}", "last", "deleted"),
        ("UPDATE command_history SET started_at = started_at WHERE id = {mid}", None, None),
    ],
)
def test_verify_names_the_first_edited_or_orphaned_row(engine, sql, bad, why) -> None:
    first, mid, last = _three_rows(engine)
    assert verify(engine).ok
    with engine.begin() as c:
        c.execute(text(sql.format(mid=mid)))
    res = verify(engine)
    if bad is None:  # a no-op write must not look like tampering
        assert res.ok and res.checked == 3
        return
    assert not res.ok
    assert res.first_bad_id == {"mid": mid, "last": last}[bad]
    assert why in res.problem


def test_rows_of_a_dead_process_are_reaped_as_interrupted(engine) -> None:
    audit = AuditLog(engine)
    dead = subprocess.Popen(["true"])
    dead.wait()
    ghost = AuditLog(engine)
    ghost.pid = dead.pid  # as if that (now gone) process had written it
    rid = ghost.start(server="web1", command="sleep 100", source="run")
    mine = audit.start(server="web1", command="sleep 1", source="run")  # alive: left alone
    assert audit.reap_interrupted() == [rid]
    by_id = {r["id"]: r for r in rows(engine)}
    assert by_id[rid]["status"] == "interrupted" and str(dead.pid) in by_id[rid]["error"]
    assert by_id[mine]["status"] == "running"
    assert verify(engine).ok
    # `history show` says the result is unknown, not that the command was stopped
    from vpsagent.services.history import show_entry

    assert show_entry(engine, rid).outcome_unknown and "result unknown" in by_id[rid]["error"]
    audit.fail(mine, "interrupted", "interrupted (Ctrl-C)", duration_s=0.5)
    assert not show_entry(engine, mine).outcome_unknown


def test_a_completion_write_is_retried_while_the_database_is_briefly_away(tmp_path) -> None:
    """The command ran to its end while another writer held the database: its real result
    is recorded once the database is back (it was left running, then reaped as interrupted)."""
    import sqlite3
    import threading

    from sqlalchemy import create_engine

    from vpsagent.db.engine import get_engine
    from vpsagent.settings import load_settings

    url = f"sqlite:///{tmp_path / 'away.db'}"
    get_engine(load_settings(env={"VPSAGENT_HOME": str(tmp_path / 'h'), "DATABASE_URL": url}))  # the schema
    # a real SQLite engine that gives up on a lock after 50 ms instead of 30 s
    engine = create_engine(url, connect_args={"timeout": 0.05, "check_same_thread": False})
    audit = AuditLog(engine)
    holder = sqlite3.connect(str(tmp_path / "away.db"), isolation_level=None, check_same_thread=False)
    released = threading.Event()

    def hold_then_release() -> None:
        holder.execute("BEGIN EXCLUSIVE")  # the database is away for writers...
        took.set()
        released.wait(30)
        holder.execute("ROLLBACK")  # ...and back

    took = threading.Event()

    def busy_command(_chunk: bytes) -> None:
        t = threading.Thread(target=hold_then_release, daemon=True)
        t.start()
        took.wait(10)
        threading.Timer(0.4, released.set).start()  # back after the first attempts failed

    res = run_audited(audit, LocalHost(), "echo done; exit 3", source="run", on_stdout=busy_command)
    holder.close()
    [r] = rows(engine)
    assert res.exit_code == 3
    assert (r["status"], r["exit_code"], r["stdout_excerpt"]) == ("failed", 3, "done\n")
    assert verify(engine).ok
    engine.dispose()


WORKER = textwrap.dedent(
    """
    import os, sys, time
    from vpsagent.db.engine import get_engine
    from vpsagent.settings import load_settings
    from vpsagent.db.audit import AuditLog
    from vpsagent.services.fleet import run_audited
    from vpsagent.remote.local import LocalHost
    engine = get_engine(load_settings())
    audit, host = AuditLog(engine), LocalHost()
    go = float(sys.argv[2])
    while time.time() < go:
        time.sleep(0.005)
    for i in range(int(sys.argv[1])):
        r = run_audited(audit, host, "true", source="run")
        assert r.ok, r
    """
)


def test_eight_processes_fifty_commands_each_lose_nothing(engine, home: Path) -> None:
    import time

    env = dict(os.environ)
    procs = []
    go = time.time() + 3.0  # every worker imported and connected: start together
    for _ in range(8):
        procs.append(subprocess.Popen([sys.executable, "-c", WORKER, "50", str(go)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()[-2000:]
        assert b"locked" not in err
    all_rows = rows(engine)
    assert len(all_rows) == 400
    assert {r["status"] for r in all_rows} == {"ok"}
    assert len({r["pid"] for r in all_rows}) == 8
    res = verify(engine)
    assert res.ok, res


def test_eight_overlapping_vpsagent_run_processes_record_all_400_rows(engine, keyring, sshd, home: Path) -> None:
    """The cron case through the real CLI and SSH: 8 `vpsagent run` at once, 50 servers each."""
    from tests.sshd import register_sshd

    for i in range(50):
        register_sshd(engine, keyring, sshd, f"cron{i:02d}", address=sshd.hosts[i % len(sshd.hosts)],
                      tags=["cron"])
    env = dict(os.environ)
    procs = [subprocess.Popen([sys.executable, "-m", "vpsagent", "run", "-t", "cron", "--json", "true"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(8)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()[-2000:]
        assert b"locked" not in err
    all_rows = rows(engine)
    assert len(all_rows) == 400 and {r["status"] for r in all_rows} == {"ok"}
    assert len({r["pid"] for r in all_rows}) == 8
    assert verify(engine).ok


def test_a_postgresql_connection_dropped_while_idle_is_replaced_before_use(engine, monkeypatch) -> None:
    """No ping per checkout any more (two round trips per command): a connection idle in the
    pool past IDLE_PING_S is pinged, and one the server dropped is replaced, not failed."""
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL: SQLite has no server to drop the connection")
    import vpsagent.db.engine as eng

    audit = AuditLog(engine)
    audit.finish(audit.start(server="web1", command="first", source="run"), _ok())
    held = [engine.connect() for _ in range(max(1, engine.pool.checkedin()))]  # every pooled connection
    pids = [c.execute(text("SELECT pg_backend_pid()")).scalar() for c in held]
    for c in held:
        c.close()
    monkeypatch.setattr(eng, "IDLE_PING_S", 0.0)
    import sqlalchemy as sa

    admin = sa.create_engine(engine.url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as c:  # the server drops our pooled connections (a restart, a proxy timeout)
        for pid in pids:
            c.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
    admin.dispose()
    rid = audit.start(server="web1", command="after the drop", source="run")
    audit.finish(rid, _ok())
    assert [r["status"] for r in rows(engine)] == ["ok", "ok"] and verify(engine).ok


def _ok():
    from vpsagent.remote.base import CommandResult

    return CommandResult(host="web1", command="x", exit_code=0, duration_s=0.01)
