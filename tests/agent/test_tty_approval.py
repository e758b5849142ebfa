"""The approval prompt on a real terminal: `vpsagent ask` as a subprocess on a pseudo-terminal.

Only a person at a TTY can turn an "ask" into a run; these tests are that person.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time

import pytest

from tests.agent._helpers import history, tool_result
from tests.fakes.anthropic_api import text, tool_use

PROMPT = b"Allow this? [y/N]"


def _read_until(fd: int, needle: bytes | None, timeout: float = 60.0) -> bytes:
    """Read the terminal until `needle` shows up (None: until the program closes it)."""
    buf = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle is not None and needle in buf:
            return buf
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the other side is closed
            break
        if not chunk:
            break
        buf += chunk
    if needle is not None and needle not in buf:
        raise AssertionError(f"{needle!r} never appeared on the terminal; got:\n{buf.decode(errors='replace')}")
    return buf


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
        shown = _read_until(master, PROMPT)
        # the exact command and the server are shown before the question
        assert f"{ssh_server}: touch {target}".encode() in shown
        assert b"mutating" in shown
        assert not target.exists()
        os.write(master, answer)
        rest = _read_until(master, None)
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
        out = _read_until(master, None)
        assert proc.wait(timeout=60) == 0, out.decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert PROMPT not in out
    assert b"Plenty of space." in out
    assert history(engine, source="ask")[0].exit_code == 0
