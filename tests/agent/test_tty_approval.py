"""The approval prompt on a real terminal: `vpsagent ask` as a subprocess on a pseudo-terminal.

Only a person at a TTY can turn an "ask" into a run; these tests are that person.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.agent._helpers import history, read_until, tool_result
from tests.fakes.anthropic_api import text, tool_use

PROMPT = b"Allow this? [y/N]"


@pytest.mark.parametrize(("answer", "runs", "code"), [(b"y\n", True, 0), (b"n\n", False, 4), (b"\n", False, 4)],
                         ids=["yes", "no", "default-no"])
def test_a_mutating_command_asks_on_the_terminal(anthropic_api, engine, ssh_server, tmp_path, answer, runs, code):
    import pty

    target = tmp_path / "approved-on-a-tty"
    anthropic_api.push(
        tool_use("run_command", {"server": ssh_server, "command": f"touch {target}"}, id="toolu_tty"),
        text("Handled."),
    )
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "vpsagent", "ask", "-s", ssh_server, "create the marker"],
                            stdin=slave, stdout=slave, stderr=slave, env=dict(os.environ), start_new_session=True)
    os.close(slave)
    try:
        shown = read_until(master, PROMPT)
        # the exact command and the server are shown before the question
        assert f"{ssh_server}: touch {target}".encode() in shown
        assert b"change" in shown
        assert not target.exists()
        os.write(master, answer)
        rest = read_until(master, None)
        assert proc.wait(timeout=60) == code, (shown + rest).decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert target.exists() is runs
    assert b"Handled." in rest
    res = tool_result(anthropic_api, "toolu_tty")
    assert bool(res.get("is_error")) is (not runs)
    (row,) = history(engine, source="ask")
    assert row.decision == ("allow" if runs else "deny")


def test_read_only_commands_never_prompt_on_a_terminal(anthropic_api, engine, ssh_server):
    import pty

    anthropic_api.push(
        tool_use("run_command", {"server": ssh_server, "command": "df -h / && ps aux | grep -c sshd"}, id="toolu_ro"),
        text("Plenty of space."),
    )
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "vpsagent", "ask", "-s", ssh_server, "disk?"],
                            stdin=slave, stdout=slave, stderr=slave, env=dict(os.environ), start_new_session=True)
    os.close(slave)
    try:
        out = read_until(master, None)
        assert proc.wait(timeout=60) == 0, out.decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert PROMPT not in out
    assert b"Plenty of space." in out
    assert history(engine, source="ask")[0].exit_code == 0


def test_chat_on_a_terminal_asks_keeps_the_conversation_and_leaves_on_ctrl_d(anthropic_api, engine, ssh_server,
                                                                            tmp_path):
    import pty

    from tests.agent._helpers import conversation, conversations

    target = tmp_path / "made-in-chat"
    anthropic_api.push(
        text("All quiet on t1."),
        tool_use("run_command", {"server": ssh_server, "command": f"touch {target}"}, id="toolu_chat_tty"),
        text("Created it."),
    )
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "vpsagent", "chat", "-s", ssh_server],
                            stdin=slave, stdout=slave, stderr=slave, env=dict(os.environ), start_new_session=True)
    os.close(slave)
    try:
        read_until(master, b"you> ")
        os.write(master, b"anything up?\n")
        read_until(master, b"All quiet on t1.")
        read_until(master, b"you> ")
        os.write(master, b"create the marker\n")
        shown = read_until(master, PROMPT)
        assert f"touch {target}".encode() in shown
        os.write(master, b"y\n")
        read_until(master, b"Created it.")
        read_until(master, b"you> ")
        os.write(master, b"\x04")  # Ctrl-D
        read_until(master, None)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert target.exists()
    (conv,) = conversations(engine)
    _, msgs = conversation(engine, conv.id)
    assert [m.role for m in msgs] == ["user", "assistant", "user", "assistant", "user", "assistant"]
    assert "anything up?" in str(anthropic_api.last["messages"])
