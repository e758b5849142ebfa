"""Ctrl-C (SIGINT) on a real `vpsagent ask` process: exit 130, the conversation saved, and
`--continue` able to resume it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from tests.agent._helpers import conversation, conversations, history
from tests.fakes.anthropic_api import Reply, text, tool_use


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "vpsagent", *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))


def _wait_for(cond, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def _roles_alternate_and_tools_answered(messages: list[dict]) -> None:
    roles = [m["role"] for m in messages]
    assert all(a != b for a, b in zip(roles, roles[1:], strict=False)), roles
    for i, m in enumerate(messages):
        ids = [b["id"] for b in m["content"] if isinstance(b, dict) and b.get("type") == "tool_use"]
        if ids:
            nxt = {b.get("tool_use_id") for b in messages[i + 1]["content"] if b.get("type") == "tool_result"}
            assert set(ids) <= nxt, "a tool_use without its tool_result was sent"


def test_ctrl_c_while_the_answer_streams(anthropic_api, engine, ssh_server):
    anthropic_api.push(Reply(content=[{"type": "text", "text": "slow answer " * 400}], chunk=4, delay=0.02))
    proc = _start("ask", "-s", ssh_server, "tell me slowly")
    try:
        _wait_for(lambda: len(anthropic_api.requests) == 1)
        time.sleep(0.5)  # some of the answer has streamed
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err.decode()
    assert b"Traceback" not in err
    assert out.startswith(b"slow answer")
    (conv,) = conversations(engine)
    assert conv.status == "interrupted"
    _, msgs = conversation(engine, conv.id)
    assert [m.role for m in msgs] == ["user"]

    anthropic_api.push(text("resumed"))
    proc2 = _start("ask", "--continue", "briefly, then")
    out2, err2 = proc2.communicate(timeout=120)
    assert proc2.returncode == 0, err2.decode()
    assert out2.decode().strip() == "resumed"
    sent = anthropic_api.last["messages"]
    _roles_alternate_and_tools_answered(sent)
    assert "tell me slowly" in json.dumps(sent) and "briefly, then" in json.dumps(sent)


def test_ctrl_c_while_a_command_runs(anthropic_api, engine, ssh_server):
    anthropic_api.push(tool_use("run_command", {"server": ssh_server, "command": "echo started; sleep 600"}, id="toolu_slp"))
    proc = _start("ask", "-s", ssh_server, "wait a while")
    try:
        _wait_for(lambda: any(h.command == "echo started; sleep 600" for h in history(engine)))
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=300)  # it does not wait for the 600 s sleep
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err.decode()
    assert b"Traceback" not in err
    (conv,) = conversations(engine)
    assert conv.status == "interrupted"
    _, msgs = conversation(engine, conv.id)
    stored = [m.content for m in msgs]
    assert any(b.get("type") == "tool_result" and b.get("tool_use_id") == "toolu_slp" for c in stored for b in c)
    (row,) = [h for h in history(engine) if h.command == "echo started; sleep 600"]
    assert row.status != "running"  # the audit row was completed

    anthropic_api.push(text("ok, stopped"))
    proc2 = _start("ask", "--continue", "never mind")
    _, err2 = proc2.communicate(timeout=120)
    assert proc2.returncode == 0, err2.decode()
    _roles_alternate_and_tools_answered(anthropic_api.last["messages"])
