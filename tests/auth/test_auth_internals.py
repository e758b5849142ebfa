"""Logins, from the inside: the migration from the first release keeps everything, old and
new audit rows verify as one chain, every command has a role, tokens never outrank their
owner, and nothing secret is stored in clear."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa

ENV = {"PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}


def _upgrade_to(engine, revision: str) -> None:
    from alembic import command

    from vpsagent.db.engine import _alembic_config

    with engine.connect() as conn:
        command.upgrade(_alembic_config(conn), revision)
        conn.commit()


def test_a_database_of_the_first_release_upgrades_in_place(db_url, home, tmp_path):
    """Revision 0001 filled with servers, history and a conversation, then upgraded to the
    head: every row is still there, the old audit rows verify, and new rows chain onto them."""
    from vpsagent.db.audit import AuditLog, verify
    from vpsagent.db.engine import SCHEMA_HEAD, current_revision, dispose_engines, make_engine
    from vpsagent.remote.local import LocalHost
    from vpsagent.services.fleet import run_audited

    engine = make_engine(db_url, default_dir=home / "data")
    _upgrade_to(engine, "0001")
    with engine.begin() as conn:
        assert current_revision(conn) == "0001"
        conn.execute(sa.text(
            "INSERT INTO servers (name, host, port, auth_kind, tags, created_at, updated_at) "
            "VALUES ('old1', 'old1.example', 22, 'agent', '[\"web\"]', :t, :t)"), {"t": "2026-11-20 10:00:00"})
        conn.execute(sa.text(
            "INSERT INTO conversations (mode, title, model, servers, status, input_tokens, output_tokens, "
            "cache_read_tokens, cache_write_tokens, cost_usd, created_at, updated_at) VALUES "
            "('chat', 'old chat', 'm', '[\"old1\"]', 'open', 1, 2, 0, 0, 0.5, :t, :t)"), {"t": "2026-11-20 10:00:00"})
    _write_v1_rows(engine)  # audit rows as the first release wrote them (hash v1: no who)

    _upgrade_to(engine, "head")
    with engine.begin() as conn:
        assert current_revision(conn) == SCHEMA_HEAD
        assert conn.execute(sa.text("SELECT host FROM servers WHERE name='old1'")).scalar() == "old1.example"
        assert conn.execute(sa.text("SELECT title FROM conversations")).scalar() == "old chat"
        assert conn.execute(sa.text("SELECT count(*) FROM command_history")).scalar() == 2
        assert conn.execute(sa.text("SELECT count(*) FROM command_history WHERE hash_version IS NULL")).scalar() == 2
    res = verify(engine)
    assert res.ok and res.checked == 2
    # a new (v2) row chains onto the old ones and records who ran it
    log = AuditLog(engine, user_email="ann@example.com", token_name="ci")
    run_audited(log, LocalHost(), "echo after-upgrade", source="run")
    res = verify(engine)
    assert res.ok and res.checked == 3
    with engine.begin() as conn:
        row = conn.execute(sa.text("SELECT user_email, token_name, hash_version FROM command_history "
                                   "ORDER BY id DESC LIMIT 1")).one()
    assert tuple(row) == ("ann@example.com", "ci", "v2")
    # the new field is covered by the hash: editing who ran it is detected
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE command_history SET user_email='mallory@example.com' "
                             "WHERE user_email='ann@example.com'"))
    bad = verify(engine)
    assert not bad.ok and bad.checked == 3
    engine.dispose()
    dispose_engines()


def _write_v1_rows(engine) -> None:
    """Two completed rows exactly as the first release's audit log wrote them."""
    import json
    from datetime import UTC, datetime

    def digest(parts):  # noqa: ANN001, ANN202 - the first release's hashing, spelled out
        data = json.dumps(parts, ensure_ascii=False, separators=(",", ":"), default=str)
        return hashlib.sha256(data.encode()).hexdigest()

    prev = ""
    for i, cmd in enumerate(["uptime", "df -h"], start=1):
        started = datetime(2026, 11, 20, 10, i, tzinfo=UTC)
        ts = started.isoformat(timespec="microseconds")
        with engine.begin() as conn:
            row_id = conn.execute(sa.text(
                "INSERT INTO command_history (started_at, finished_at, status, source, server, command, "
                "sudo, os_user, pid, hostname, exit_code, duration_ms, stdout_bytes, stderr_bytes, "
                "stdout_excerpt, stderr_excerpt, prev_hash) VALUES "
                "(:t, :t, 'ok', 'run', 'old1', :c, :f, 'ops', 100, 'h', 0, 5, 10, 0, 'x', '', :p) RETURNING id"),
                {"t": started, "c": cmd, "f": False, "p": prev or None}).scalar_one()
            row_hash = digest(["v1", row_id, ts, "run", "old1", cmd, False, "ops", 100, "h", None, None, prev])
            done = digest(["v1", row_hash, ts, "ok", 0, 5, 10, 0, "x", "", None, None, None])
            conn.execute(sa.text("UPDATE command_history SET row_hash=:r, done_hash=:d WHERE id=:i"),
                         {"r": row_hash, "d": done, "i": row_id})
        prev = row_hash


def test_every_command_has_a_role_in_the_table():
    """A command missing from COMMAND_ROLES would need admin (the table fails closed): keep
    it complete so no command is accidentally admin-only, and no entry names a dead command."""
    import click

    from vpsagent.cli import COMMANDS, cli
    from vpsagent.services.auth import COMMAND_ROLES

    names: list[str] = []
    ctx = click.Context(cli)

    def walk(cmd: click.Command, path: str) -> None:
        if isinstance(cmd, click.Group):
            if getattr(cmd, "invoke_without_command", False):
                names.append(path)
            for sub in cmd.list_commands(ctx):
                walk(cmd.get_command(ctx, sub), f"{path} {sub}".strip())  # type: ignore[arg-type]
        else:
            names.append(path)

    for name in COMMANDS:
        walk(cli.get_command(ctx, name), name)  # type: ignore[arg-type]
    admin_only = {"servers add", "servers edit", "servers remove", "servers import", "secret rekey",
                  "db upgrade", "users add", "users list", "users edit", "users disable", "auth require",
                  "auth off"}
    missing = [n for n in names if n not in COMMAND_ROLES and n not in admin_only]
    assert missing == [], "add these commands to services/auth.py COMMAND_ROLES"
    assert all(n in names for n in admin_only)


def test_a_token_never_has_more_than_its_owner(cli, smtp_server):
    mail = smtp_server("plain")
    env = {**ENV, **mail.env}
    assert cli("users", "add", "ada@example.com", env=env).exit_code == 0
    assert cli("users", "add", "otto@example.com", "--role", "operator", env=env).exit_code == 0
    _login(cli, mail, env, "otto@example.com")
    r = cli("tokens", "create", "too-much", "--role", "admin", env=env)
    assert r.exit_code == 3 and "more than your own role" in r.stderr
    tok = cli("tokens", "create", "ci", "--json", env=env).json()["data"]["token"]
    assert tok.startswith("vpsa_")
    # an admin lowers Otto to viewer: his operator token is a viewer token from then on
    cli("logout", env=env)
    _login(cli, mail, env, "ada@example.com")
    assert cli("users", "edit", "otto@example.com", "--role", "viewer", env=env).exit_code == 0
    assert cli("auth", "require", env=env).exit_code == 0
    cli("logout", env=env)
    r = cli("run", "-s", "local", "true", env={**env, "VPSAGENT_TOKEN": tok})
    assert r.exit_code == 3 and "operator" in r.stderr


def test_the_last_admin_cannot_be_demoted_or_disabled(cli, smtp_server):
    mail = smtp_server("plain")
    env = {**ENV, **mail.env}
    cli("users", "add", "ada@example.com", env=env)
    r = cli("users", "edit", "ada@example.com", "--role", "viewer", env=env)
    assert r.exit_code == 2 and "no active admin" in r.stderr
    r = cli("users", "disable", "ada@example.com", env=env)
    assert r.exit_code == 2 and "no active admin" in r.stderr


def test_auth_require_needs_a_logged_in_admin(cli, smtp_server):
    mail = smtp_server("plain")
    env = {**ENV, **mail.env}
    r = cli("auth", "require", env=env)
    assert r.exit_code == 3  # nobody logged in (and no user yet)
    cli("users", "add", "ada@example.com", env=env)
    assert cli("auth", "require", env=env).exit_code == 3
    _login(cli, mail, env, "ada@example.com")
    assert cli("auth", "require", env=env).exit_code == 0
    assert cli("whoami", "--json", env=env).json()["data"]["login_required"] is True


def test_sessions_and_codes_are_stored_only_as_hashes(cli, smtp_server, engine):
    mail = smtp_server("plain")
    env = {**ENV, **mail.env}
    cli("users", "add", "ada@example.com", env=env)
    token = _login(cli, mail, env, "ada@example.com")
    code = mail.last_code("ada@example.com")
    with engine.begin() as conn:
        sess = conn.execute(sa.text("SELECT token_hash FROM sessions")).scalar()
        otp = conn.execute(sa.text("SELECT code_hash, state FROM otp_codes")).one()
    assert sess == hashlib.sha256(token.encode()).hexdigest()
    assert otp[1] == "used" and code not in otp[0] and len(otp[0]) == 64


def _login(cli, mail, env, email: str) -> str:  # noqa: ANN001
    from pathlib import Path

    assert cli("login", email, "--send", env=env).exit_code == 0
    code = mail.last_code(email)
    r = cli("login", email, "--code-stdin", input=code + "\n", env=env)
    assert r.exit_code == 0, r.stderr
    (token_file,) = [p for p in Path(env.get("VPSAGENT_HOME", "")).glob("config/*.token")] or \
        list(Path(__import__("os").environ["VPSAGENT_HOME"]).glob("config/*.token"))
    return token_file.read_text().strip()


@pytest.mark.parametrize("mode", ["plain", "starttls", "implicit"])
def test_mail_errors_never_carry_the_smtp_password(cli, smtp_server, mode):
    mail = smtp_server(mode, reject_sender=True)
    env = {**ENV, **mail.env}
    cli("users", "add", "ada@example.com", env=env)
    r = cli("login", "ada@example.com", "--send", env=env)
    assert r.exit_code == 1 and "refused the sender" in r.stderr
    assert mail.password not in r.stderr + r.stdout
