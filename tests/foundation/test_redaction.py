"""What vpsagent itself holds never lands in the audit log: the master key in the key
file and its API tokens, whichever command ran (run and test run alike)."""

from __future__ import annotations

import sqlalchemy as sa


def _audit_text(engine) -> str:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT command, stdout_excerpt, stderr_excerpt FROM command_history")).all()
    return "\n".join(" ".join(str(v) for v in r) for r in rows)


def _master_key(cli, home) -> str:
    assert cli("servers", "add", "dummy", "--host", "198.51.100.3", "--password-stdin",
               input="Stored-Pa55word-xyz\n").exit_code == 0  # creates the key file
    return (home / "config" / "secret.key").read_text().strip()


def test_run_never_stores_the_master_key_or_tokens(cli, home, engine):
    master = _master_key(cli, home)
    token = "ghp_" + "a" * 36
    r = cli("run", "-s", "local", f"cat {home}/config/secret.key; echo {token}", env={"GITHUB_TOKEN": token})
    assert r.exit_code == 0
    stored = _audit_text(engine)
    assert master not in stored and token not in stored and "[REDACTED]" in stored


def test_test_run_redacts_what_a_step_echoes(cli, home, engine, tmp_path):
    master = _master_key(cli, home)
    plan = tmp_path / "p.yaml"
    plan.write_text(f"name: leak\nsteps:\n  - run: cat {home}/config/secret.key\n")
    assert cli("test", "run", str(plan), "-s", "local").exit_code == 0
    stored = _audit_text(engine)
    assert master not in stored and "[REDACTED]" in stored
