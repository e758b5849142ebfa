"""`ask` and `chat` for daily use (issue 11): turns that do not run together, every turn's
text in --json, chat's own /commands, nothing stored for an empty chat, the mode and the
titles conversations are listed with, denials and errors that say the right thing."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

from tests.agent._helpers import conversations, read_until
from tests.fakes.anthropic_api import text, tool_use


def _two_turns(api, server: str) -> None:
    api.push(
        tool_use("run_command", {"server": server, "command": "echo DISK"}, text="Let me check the disk."),
        text("DISK-REPORT: plenty of room."),
    )


def test_turns_are_apart_on_stdout_and_json_keeps_every_turn(anthropic_api, cli, ssh_server):
    _two_turns(anthropic_api, ssh_server)
    r = cli("ask", "-s", ssh_server, "how is the disk?")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "Let me check the disk.\nDISK-REPORT: plenty of room.\n"
    _two_turns(anthropic_api, ssh_server)
    data = cli("ask", "--json", "-s", ssh_server, "how is the disk?").json()["data"]
    assert data["answer"] == "DISK-REPORT: plenty of room."
    assert data["texts"] == ["Let me check the disk.", "DISK-REPORT: plenty of room."]


def test_ask_conversations_are_listed_as_ask_and_continue_still_works(anthropic_api, cli, ssh_server):
    anthropic_api.push(text("first"), text("second"))
    assert cli("ask", "-s", ssh_server, "hello").exit_code == 0
    (conv,) = cli("conversations", "list", "--json").json()["data"]["conversations"]
    assert conv["mode"] == "ask" and conv["title"] == "hello"
    assert cli("conversations", "list", "--mode", "ask", "--json").json()["data"]["conversations"]
    r = cli("ask", "--continue", "and then?")
    assert r.exit_code == 0 and r.stdout == "second\n"
    assert len(cli("conversations", "list", "--json").json()["data"]["conversations"]) == 1


def test_chat_answers_its_own_commands_and_sends_only_the_rest(anthropic_api, cli, ssh_server):
    anthropic_api.push(text("Hi there."))
    r = cli("chat", "-s", ssh_server, input="/help\n/servers\n/nosuch\nhello\n/exit\n")
    assert r.exit_code == 0, r.stderr
    assert len(anthropic_api.requests) == 1
    sent = str(anthropic_api.requests[0]["messages"])
    assert "hello" in sent and "/help" not in sent and "/servers" not in sent and "/nosuch" not in sent
    assert "/servers" in r.stderr and f"  {ssh_server}  " in r.stderr  # /help, then /servers
    assert "unknown command /nosuch" in r.stderr
    assert r.stdout == "Hi there.\n"


def test_an_empty_chat_is_not_stored(anthropic_api, cli, engine, ssh_server):
    r = cli("chat", "-s", ssh_server, input="/help\n\n")
    assert r.exit_code == 0, r.stderr
    assert conversations(engine) == []
    assert anthropic_api.requests == []


def test_ctrl_d_in_chat_ends_on_a_new_line(anthropic_api, engine, ssh_server):
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "vpsagent", "chat", "-s", ssh_server],
                            stdin=slave, stdout=slave, stderr=slave, env=dict(os.environ), start_new_session=True)
    os.close(slave)
    try:
        read_until(master, b"you> ")
        os.write(master, b"\x04")
        rest = read_until(master, None)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert rest.startswith(b"\r\n"), rest
    assert conversations(engine) == []


def test_an_ask_rule_on_a_read_only_command_is_not_called_a_change(anthropic_api, cli, settings, ssh_server):
    settings.policy_file.parent.mkdir(parents=True, exist_ok=True)
    settings.policy_file.write_text("ask:\n  - uptime\n")
    anthropic_api.push(tool_use("run_command", {"server": ssh_server, "command": "uptime"}), text("ok"))
    r = cli("ask", "-s", ssh_server, "load?")
    assert r.exit_code == 4, r.stderr
    summary = r.stderr.strip().splitlines()[-1]
    assert "read-only commands a policy ask rule names" in summary and "changes" not in summary, summary


def test_test_generate_conversations_are_titled_from_the_request(anthropic_api, cli, ssh_server, tmp_path):
    plan = "name: gen\nsteps:\n  - run: 'true'\n"
    anthropic_api.push(text(f"```yaml\n{plan}```"))
    r = cli("test", "generate", "-s", ssh_server, "the disk has room", "-o", str(tmp_path / "p.yaml"))
    assert r.exit_code == 0, r.stderr
    (conv,) = cli("conversations", "list", "--json").json()["data"]["conversations"]
    assert conv["title"] == f"test generate on {ssh_server}: the disk has room"


def test_explain_conversations_are_titled_from_the_plan_and_step(anthropic_api, cli, ssh_server, tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("name: web\nsteps:\n  - name: it answers\n    run: exit 3\n")
    anthropic_api.push(text("It exited 3."))
    r = cli("test", "run", str(path), "-s", ssh_server, "--explain")
    assert r.exit_code == 1, r.stderr
    (conv,) = cli("conversations", "list", "--json").json()["data"]["conversations"]
    assert conv["title"] == f"explain: web @ {ssh_server}, step 1: it answers"


def test_an_explain_error_does_not_say_continue(anthropic_api, cli, ssh_server, tmp_path):
    from tests.fakes.anthropic_api import overloaded

    path = tmp_path / "p.yaml"
    path.write_text("name: web\nsteps:\n  - run: exit 3\n")
    anthropic_api.always(overloaded())  # its hint, for `ask`, is "resume with --continue"
    report = tmp_path / "r.json"
    r = cli("test", "run", str(path), "-s", ssh_server, "--explain", "--report", f"json:{report}")
    assert r.exit_code == 1
    import json

    explanation = json.loads(report.read_text())["plans"][0]["servers"][0]["steps"][0]["explanation"]
    assert explanation.startswith("diagnosis unavailable") and "--continue" not in explanation


def test_verbose_usage_says_1_turn(anthropic_api, cli, ssh_server):
    anthropic_api.push(text("ok"))
    r = cli("ask", "-v", "-s", ssh_server, "hi")
    assert r.exit_code == 0 and " · 1 turn · " in r.stderr, r.stderr
