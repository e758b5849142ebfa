"""One redactor for everything written or shown (issue 10, item 1): a server that prints
another server's stored password and a `password=hunter2` line leaves neither in the
audit log, the test_steps rows, any test report, nor --json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.sshd import SSHD, register_sshd

OTHER_PASSWORD = "Other-Pa55word-xyz"
LEAK = f"echo {OTHER_PASSWORD}; echo password=hunter2"


@pytest.fixture
def two_servers(cli, engine, keyring, sshd: SSHD) -> str:
    """t1 (the real sshd) and `other`, a server never contacted whose password is stored."""
    register_sshd(engine, keyring, sshd, "t1")
    r = cli("servers", "add", "other", "--host", "198.51.100.3", "--password-stdin", input=OTHER_PASSWORD + "\n")
    assert r.exit_code == 0, r.stderr
    return "t1"


def _rows(engine, table: str) -> str:
    with engine.connect() as conn:
        return "\n".join(" ".join(str(v) for v in r) for r in conn.execute(sa.text(f"SELECT * FROM {table}")).all())


def _clean(text: str) -> None:
    assert OTHER_PASSWORD not in text and "hunter2" not in text, text


def test_run_audit_and_json_redact_every_stored_credential(cli, engine, two_servers) -> None:
    r = cli("run", "-s", two_servers, "--json", LEAK)
    assert r.exit_code == 0, r.stderr
    _clean(r.stdout)
    assert "[REDACTED]" in r.json()["data"]["servers"][0]["stdout"]
    _clean(_rows(engine, "command_history"))
    shown = cli("history", "show", "1")
    _clean(shown.stdout)


def test_test_run_redacts_steps_reports_and_json(cli, engine, two_servers, tmp_path: Path) -> None:
    plan = tmp_path / "leak.yaml"
    plan.write_text(f"name: leak\nsteps:\n  - name: leaks\n    run: '{LEAK}; exit 1'\n")
    reports = {fmt: tmp_path / f"r.{fmt}" for fmt in ("junit", "json", "tap", "text")}
    args = [a for fmt, p in reports.items() for a in ("--report", f"{fmt}:{p}")]
    r = cli("test", "run", str(plan), "-s", two_servers, *args)
    assert r.exit_code == 1, r.stderr
    _clean(r.stdout + r.stderr)
    for p in reports.values():
        _clean(p.read_text())
    assert "[REDACTED]" in reports["json"].read_text()
    _clean(_rows(engine, "test_steps"))
    _clean(_rows(engine, "command_history"))
    j = cli("test", "run", str(plan), "-s", two_servers, "--json")
    _clean(j.stdout)
    json.loads(j.stdout)
    _clean(cli("test", "show", "1", "--json").stdout)


def test_a_credential_cut_in_half_by_the_excerpt_is_masked_on_both_sides(cli, engine, two_servers) -> None:
    # the audit excerpt keeps 4096 bytes of head and of tail: the password straddles the cut
    r = cli("run", "-s", two_servers, f"head -c 4090 /dev/zero | tr '\\0' A; echo {OTHER_PASSWORD}; "
                                      "head -c 9000 /dev/zero | tr '\\0' B")
    assert r.exit_code == 0, r.stderr
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT stdout_excerpt FROM command_history")).scalar()
    assert "A[REDACTED]\n[... " in stored and "bytes cut" in stored  # "Other-" was the head's end
    assert "Other" not in stored


def test_pieces_of_a_credential_at_a_cut_marker() -> None:
    from vpsagent.redact import Redactor

    r = Redactor([OTHER_PASSWORD, "another-long-secret"])
    cut = "\n[... 500 bytes cut ...]\n"
    assert r.redact("xx" + OTHER_PASSWORD[:9] + cut + OTHER_PASSWORD[9:] + "yy") == f"xx[REDACTED]{cut}[REDACTED]yy"
    assert r.redact("xx Othe" + cut + "yy") == f"xx [REDACTED]{cut}yy"
    assert r.redact("xx Oth" + cut + "yy") == "xx Oth" + cut + "yy"  # three characters mean nothing
    assert r.redact("Other-Pa55 in prose, no cut") == "Other-Pa55 in prose, no cut"
