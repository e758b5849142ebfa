"""The user's policy file reaches the agent: allow rules approve, deny rules deny, a broken
file stops `ask` before anything is sent. (Deletions only inside this test's tmp_path.)"""

from __future__ import annotations

from pathlib import Path

from tests.agent._helpers import history, result_text, tool_result
from tests.fakes.anthropic_api import text, tool_uses


def test_allow_and_deny_rules_apply_to_the_agent(anthropic_api, cli, engine, settings, ssh_server, tmp_path: Path):
    cache = tmp_path / "cache"
    (cache / "sub").mkdir(parents=True)
    (cache / "sub" / "blob").write_text("x")
    settings.policy_file.parent.mkdir(parents=True, exist_ok=True)
    settings.policy_file.write_text(
        "allow:\n"
        f"  - touch {tmp_path}/allowed-*\n"
        "deny:\n"
        "  - uname *\n"
        "servers:\n"
        f"  {ssh_server}:\n"
        "    allow:\n"
        f"      - rm -rf {cache}\n"
    )
    anthropic_api.push(
        tool_uses([
            ("run_command", {"server": ssh_server, "command": f"touch {tmp_path}/allowed-1"}, "toolu_p1"),
            ("run_command", {"server": ssh_server, "command": f"rm -rf {cache}"}, "toolu_p2"),
            ("run_command", {"server": ssh_server, "command": "uname -a"}, "toolu_p3"),
            ("run_command", {"server": ssh_server, "command": f"touch {tmp_path}/other"}, "toolu_p4"),
        ]),
        text("Done what the policy allows."),
    )
    r = cli("ask", "--json", "-s", ssh_server, "tidy up")
    assert r.exit_code == 4, r.stdout + r.stderr
    assert (tmp_path / "allowed-1").exists()  # allowed by rule, no --yes needed
    assert not cache.exists()  # destructive, but named by the server's allow rule
    assert not (tmp_path / "other").exists()  # a change, no rule, no TTY: denied
    assert tool_result(anthropic_api, "toolu_p3").get("is_error") is True
    assert "uname *" in result_text(tool_result(anthropic_api, "toolu_p3"))
    decisions = {c["command"]: c["decision"] for c in r.json()["data"]["tool_calls"]}
    assert decisions == {f"touch {tmp_path}/allowed-1": "allow", f"rm -rf {cache}": "allow",
                         "uname -a": "deny", f"touch {tmp_path}/other": "deny"}
    # the envelope's errors say what did not happen: one entry per denial (it was `[]` with exit 4)
    errs = r.json()["errors"]
    assert [(e["code"], e["tool_use_id"]) for e in errs] == [("denied", "toolu_p3"), ("denied", "toolu_p4")]
    assert "uname -a" in errs[0]["message"]
    rows = {h.command: h for h in history(engine, source="ask")}
    assert rows["uname -a"].decision == "deny" and rows[f"rm -rf {cache}"].exit_code == 0


def test_a_broken_policy_file_stops_before_any_request(anthropic_api, cli, settings, ssh_server):
    settings.policy_file.parent.mkdir(parents=True, exist_ok=True)
    settings.policy_file.write_text("alow:\n  - df -h\n")
    r = cli("ask", "-s", ssh_server, "hello")
    assert r.exit_code == 2
    assert "alow" in r.stderr and "Traceback" not in r.stderr
    assert anthropic_api.requests == []
