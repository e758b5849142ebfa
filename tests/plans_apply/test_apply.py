"""`plan validate/show` and `apply` on three real loopback servers (the session's sshd)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.agent._helpers import history


def per_server_plan(d: Path, failing: str | None = None) -> str:
    """Each server writes its own file (the step's `servers` selector), verify fails on `failing`."""
    steps = []
    for name in ("web1", "web2", "web3"):
        check = "test -f /nonexistent-vpsagent" if name == failing else f"test -f {d}/{name}.mark"
        steps.append(f"""\
  - name: mark {name}
    servers: [{name}]
    command: touch {d}/{name}.mark
    why: a trace
    expect: {d}/{name}.mark exists
    verify:
      - run: {check}
    undo: rm -f {d}/{name}.mark
""")
    return "vpsagent: change-plan/1\nrequest: mark\nselection: {tags: [web]}\nsteps:\n" + "".join(steps)


def test_validate_reports_problems_at_their_place(cli, write) -> None:
    path = write("vpsagent: change-plan/1\nsteps:\n  - command: true\n    why: x\n    verify:\n      - run: true\n"
                 "        bogus: 1\n")
    r = cli("plan", "validate", path)
    assert r.exit_code == 2
    assert f"{path}:3:5: step 1: missing required key 'expect'" in r.stdout
    assert f"{path}:7:9: unknown key 'bogus'" in r.stdout


def test_validate_gives_class_and_decision(cli, three, write, tmp_path) -> None:
    path = write(per_server_plan(tmp_path))
    r = cli("plan", "validate", path, "--json")
    assert r.exit_code == 0, r.stdout + r.stderr
    judged = r.json()["data"]["judgements"]
    assert {(j["server"], j["risk"], j["decision"], j["undo"]) for j in judged if j["step"] == 1} == {
        ("web1", "change", "ask", False), ("web1", "change", "ask", True)}


def test_apply_all_succeed_and_hash_in_every_audit_row(cli, three, write, tmp_path, engine) -> None:
    path = write(per_server_plan(tmp_path))
    r = cli("apply", path, "--yes", "--json")
    assert r.exit_code == 0, r.stdout + r.stderr
    data = r.json()["data"]
    assert [s["outcome"] for s in data["servers"]] == ["applied"] * 3
    for n in ("web1", "web2", "web3"):
        assert (tmp_path / f"{n}.mark").exists()
    rows = history(engine, source="apply")
    assert rows and all(f"sha256:{data['hash']}" in (row.decision_reason or "") for row in rows)
    assert {row.server for row in rows} == {"web1", "web2", "web3"}
    h = cli("plan", "history", data["hash"][:10], "--json").json()["data"]
    assert h["applications"][0]["status"] == "applied"
    assert set(h["applications"][0]["results"]) == {"web1", "web2", "web3"}


def test_second_server_verify_fails_undo_there_third_untouched(cli, three, write, tmp_path, engine) -> None:
    path = write(per_server_plan(tmp_path, failing="web2"))
    r = cli("apply", path, "--yes", "--json")
    assert r.exit_code == 1, r.stdout + r.stderr
    out = {s["server"]: s for s in r.json()["data"]["servers"]}
    assert out["web1"]["outcome"] == "applied" and (tmp_path / "web1.mark").exists()
    assert out["web2"]["outcome"] == "failed"
    assert [u["status"] for u in out["web2"]["undone"]] == ["ok"]
    assert not (tmp_path / "web2.mark").exists()  # undone
    assert out["web3"]["outcome"] == "skipped" and not (tmp_path / "web3.mark").exists()
    assert not [row for row in history(engine, source="apply") if row.server == "web3"]


def test_plan_edited_after_shown_is_refused(cli, three, write, tmp_path) -> None:
    path = write(per_server_plan(tmp_path))
    assert cli("plan", "show", path).exit_code == 0
    Path(path).write_text(per_server_plan(tmp_path).replace("why: a trace", "why: edited"))
    r = cli("apply", path, "--yes")
    assert r.exit_code == 4
    assert "changed after it was shown" in r.stderr
    assert not list(tmp_path.glob("*.mark"))
    # shown again: now it may run
    assert cli("plan", "show", path).exit_code == 0
    assert cli("apply", path, "--yes").exit_code == 0


def test_hash_option_refuses_another_version(cli, three, write, tmp_path) -> None:
    path = write(per_server_plan(tmp_path))
    r = cli("apply", path, "--yes", "--hash", "0" * 12)
    assert r.exit_code == 4 and not list(tmp_path.glob("*.mark"))


def test_policy_tightened_between_plan_and_apply(cli, three, write, tmp_path, home) -> None:
    path = write(per_server_plan(tmp_path))
    assert cli("plan", "validate", path).exit_code == 0
    policy = home / "config" / "policy.yaml"
    policy.parent.mkdir(parents=True, exist_ok=True)
    policy.write_text('deny: ["touch *"]\n')
    r = cli("apply", path, "--yes", "--json")
    assert r.exit_code == 4
    refused = r.json()["data"]["refused"]
    assert any("step 1" in x and "touch" in x for x in refused), refused
    assert not list(tmp_path.glob("*.mark"))


def test_without_terminal_or_yes_nothing_runs(cli, three, write, tmp_path) -> None:
    path = write(per_server_plan(tmp_path))
    r = cli("apply", path)
    assert r.exit_code == 4
    assert "needs approval" in r.stderr
    assert not list(tmp_path.glob("*.mark"))


def test_dry_run_executes_nothing(cli, three, write, tmp_path, engine) -> None:
    path = write(per_server_plan(tmp_path))
    r = cli("apply", path, "--dry-run", "--yes", "--json")
    assert r.exit_code == 0, r.stdout + r.stderr
    assert [s["outcome"] for s in r.json()["data"]["servers"]] == ["planned"] * 3
    assert not list(tmp_path.glob("*.mark"))
    assert history(engine, probes=True) == []


def test_dry_run_needs_no_terminal_and_is_not_an_application(cli, three, write, tmp_path, engine) -> None:
    """A preview in CI (no terminal, no --yes) shows the plan and exits 0; it is not recorded as an
    application. A step the policy denies still makes it exit 4, as the real apply would."""
    path = write(per_server_plan(tmp_path))
    r = cli("apply", path, "--dry-run", "--json")
    assert r.exit_code == 0, r.stdout + r.stderr
    data = r.json()["data"]
    assert data["status"] == "dry_run" and data["application_id"] is None
    assert [s["outcome"] for s in data["servers"]] == ["planned"] * 3
    text = cli("apply", path, "--dry-run")
    assert text.exit_code == 0 and "touch" in text.stdout + text.stderr
    assert cli("plan", "history", path, "--json").json()["data"]["applications"] == []
    assert history(engine, probes=True) == []  # not even denied rows: nothing was applied
    risky = write(per_server_plan(tmp_path).replace(f"touch {tmp_path}/web1.mark", "rm -rf /"), "risky.yaml")
    denied = cli("apply", risky, "--dry-run", "--json")
    assert denied.exit_code == 4 and any("step 1" in e["message"] for e in denied.json()["errors"])


def test_canary_failure_stops_before_others(cli, three, write, tmp_path) -> None:
    path = write(per_server_plan(tmp_path, failing="web1"))
    r = cli("apply", path, "--yes", "--canary", "1", "--serial", "2", "--json")
    assert r.exit_code == 1
    out = {s["server"]: s["outcome"] for s in r.json()["data"]["servers"]}
    assert out == {"web1": "failed", "web2": "skipped", "web3": "skipped"}


def test_max_fail_lets_the_rest_go_on(cli, three, write, tmp_path) -> None:
    path = write(per_server_plan(tmp_path, failing="web2"))
    r = cli("apply", path, "--yes", "--max-fail", "34%", "--json")
    assert r.exit_code == 1
    out = {s["server"]: s["outcome"] for s in r.json()["data"]["servers"]}
    assert out == {"web1": "applied", "web2": "failed", "web3": "applied"}


def test_list_shows_plans(cli, three, write, tmp_path) -> None:
    path = write(per_server_plan(tmp_path))
    cli("plan", "show", path)
    r = cli("plan", "list", "--json")
    rows = r.json()["data"]["plans"]
    assert rows[0]["path"] == str(Path(path).resolve()) and rows[0]["origin"] == "show"
    assert json.dumps(rows)


def test_validate_exit_4_when_todays_policy_denies_a_step(cli, three, write, tmp_path, home) -> None:
    path = write(per_server_plan(tmp_path))
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "policy.yaml").write_text('deny: ["touch *"]\n')
    r = cli("plan", "validate", path)
    assert r.exit_code == 4
    assert "deny" in r.stdout
    assert not r.stdout.startswith("ok:")  # valid, but not ok to apply
    assert r.stdout.startswith("valid, but 3 steps denied by today's policy: ")


def test_edited_after_apply_needs_a_new_review(cli, three, write, tmp_path) -> None:
    path = write(per_server_plan(tmp_path))
    assert cli("apply", path, "--yes").exit_code == 0
    Path(path).write_text(per_server_plan(tmp_path).replace("why: a trace", "why: edited"))
    r = cli("apply", path, "--yes")
    assert r.exit_code == 4 and "changed after it was applied" in r.stderr


def test_a_refused_plan_is_in_the_audit_log_as_denied_with_its_hash(cli, three, write, tmp_path, engine) -> None:
    path = write(per_server_plan(tmp_path))
    r = cli("apply", path, "--json")  # no terminal, no --yes
    assert r.exit_code == 4
    digest = r.json()["data"]["hash"]
    rows = history(engine, source="apply")
    assert rows and {row.status for row in rows} == {"denied"}
    assert {row.server for row in rows} == {"web1", "web2", "web3"}
    assert all(f"sha256:{digest}" in (row.decision_reason or "") and row.exit_code is None for row in rows)


def test_failure_messages_are_redacted(cli, three, write, tmp_path) -> None:
    (tmp_path / "creds").write_text("password=hunter2-secret\n")
    path = write("vpsagent: change-plan/1\nselection: {servers: [web1]}\nsteps:\n"
                 f"  - command: cat {tmp_path}/creds >&2; exit 3\n    why: x\n    expect: y\n")
    r = cli("apply", path, "--yes", "--json")
    assert r.exit_code == 1
    assert "hunter2" not in r.stdout and "[REDACTED]" in r.stdout
    h = cli("plan", "history", path, "--json")
    assert "hunter2" not in h.stdout and "exit 3" in h.stdout


def test_a_write_step_without_undo_is_undone_from_its_backup(cli, three, write, tmp_path) -> None:
    old, new = tmp_path / "app.conf", tmp_path / "extra.conf"
    old.write_text("port 80\n")
    old.chmod(0o640)
    path = write(f"""\
vpsagent: change-plan/1
selection: {{servers: [web1]}}
steps:
  - write: {{path: {old}, content: "port 8080\\n"}}
    why: x
    expect: y
  - write: {{path: {new}, content: "new\\n"}}
    why: x
    expect: y
  - command: test -e /nonexistent-vpsagent
    why: fails on purpose
    expect: nothing
""")
    r = cli("apply", path, "--yes", "--json")
    assert r.exit_code == 1, r.stdout + r.stderr
    undone = r.json()["data"]["servers"][0]["undone"]
    assert [(u["index"], u["status"]) for u in undone] == [(2, "ok"), (1, "ok")]
    assert old.read_text() == "port 80\n" and oct(old.stat().st_mode & 0o777) == "0o640"
    assert not new.exists()
    assert not list(tmp_path.glob("*.bak"))  # the backup went back into place


def test_lock_busy_exits_75_and_changes_nothing(cli, three, write, tmp_path, engine) -> None:
    """`apply --lock` (issue 10's per-server lock): a server held by another run → 75, no server touched."""
    from vpsagent.db.locks import Lease

    path = write(per_server_plan(tmp_path))
    other = Lease(engine, ["web2"], "vpsagent run by cron on box pid 1")
    other.acquire()
    try:
        r = cli("apply", path, "--yes", "--lock", "--json")
        assert r.exit_code == 75, r.stdout + r.stderr
        assert r.json()["errors"][0]["code"] == "busy"
        assert not any((tmp_path / f"{n}.mark").exists() for n in ("web1", "web2", "web3"))
        assert not [row for row in history(engine, source="apply") if row.status != "denied"]
        h = cli("plan", "history", path, "--json")
        assert h.exit_code == 2 or h.json()["data"]["applications"] == []  # no application left "running"
    finally:
        other.release()
    ok = cli("apply", path, "--yes", "--lock", "--json")
    assert ok.exit_code == 0, ok.stdout + ok.stderr
    assert all((tmp_path / f"{n}.mark").exists() for n in ("web1", "web2", "web3"))
    with engine.connect() as c:
        from vpsagent.db.tables import server_locks

        assert c.execute(server_locks.select()).fetchall() == []  # released after the rollout
