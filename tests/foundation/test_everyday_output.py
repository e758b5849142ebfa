"""Output for daily use (issue 11): tables that fit an 80-column terminal and split cleanly
off one, one time format, and the wording a new user trips over."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def on_terminal(*args: str, columns: int = 80, env: dict[str, str] | None = None,
                input: bytes | None = None) -> tuple[int, str]:
    """Run `vpsagent ARGS` with stdout and stderr on a real terminal `columns` wide."""
    from tests.agent._helpers import read_until

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    full = dict(os.environ)
    full.pop("COLUMNS", None)
    full.update(env or {})
    full.setdefault("TERM", "xterm")
    proc = subprocess.Popen([sys.executable, "-m", "vpsagent", *args], stdin=subprocess.PIPE if input else slave,
                            stdout=slave, stderr=slave, env=full, start_new_session=True)
    os.close(slave)
    try:
        if input is not None:
            assert proc.stdin is not None
            proc.stdin.write(input)
            proc.stdin.close()
        raw = read_until(master, None)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return code, ANSI.sub("", raw.decode("utf-8", "replace")).replace("\r\n", "\n")


def _long_fingerprint_server(cli, tmp_path: Path) -> None:
    key = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    host_key = (key.with_suffix(".pub")).read_text().split()
    r = cli("servers", "add", "a-server-with-a-rather-long-name", "--host", "web-frontend-17.internal.example.com",
            "-u", "deployment-user", "--key", str(key), "-t", "web", "-t", "frontend", "-t", "production",
            "--host-key", f"web-frontend-17.internal.example.com {host_key[0]} {host_key[1]}")
    assert r.exit_code == 0, r.stderr


def test_servers_list_fits_80_columns_with_a_short_fingerprint(cli, tmp_path):
    _long_fingerprint_server(cli, tmp_path)
    code, screen = on_terminal("servers", "list")
    assert code == 0, screen
    lines = screen.rstrip("\n").split("\n")
    assert len(lines) == 3, screen  # header, local, the server: nothing folded
    assert all(len(line) <= 80 for line in lines), screen
    assert all(line == line.rstrip() for line in lines), "lines padded with trailing spaces"
    row = lines[2]
    assert re.search(r"SHA256:[A-Za-z0-9+/]{8}…", row), row
    assert "…" in row


def test_tables_off_a_terminal_are_tab_separated_and_whole(cli, tmp_path):
    _long_fingerprint_server(cli, tmp_path)
    r = cli("servers", "list")
    lines = r.stdout.splitlines()
    assert lines[0].split("\t") == ["NAME", "TARGET", "AUTH", "TAGS", "HOST KEY"]
    fields = lines[2].split("\t")
    assert fields[0] == "a-server-with-a-rather-long-name"
    assert re.fullmatch(r"SHA256:[A-Za-z0-9+/]{43}", fields[4]), fields  # whole, no ellipsis
    assert "…" not in r.stdout and all(line == line.rstrip() for line in lines)


def test_history_fits_the_terminal_and_shows_local_time_with_offset(cli, tmp_path):
    long = "echo " + "x" * 150
    assert cli("run", "-s", "local", long).exit_code == 0
    code, screen = on_terminal("history", env={"TZ": "Asia/Kolkata"})
    assert code == 0, screen
    lines = screen.rstrip("\n").split("\n")
    assert len(lines) == 2 and all(len(line) <= 80 for line in lines), screen
    assert lines[1].endswith("…")
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0530", lines[1]), lines[1]
    # off a terminal the command is whole; --json carries ISO 8601
    assert long in cli("history").stdout
    started = cli("history", "--json").json()["data"]["entries"][0]["started_at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00", started), started


def test_text_times_have_no_microseconds(cli):
    assert cli("run", "-s", "local", "true").exit_code == 0
    (entry,) = cli("history", "--json").json()["data"]["entries"]
    shown = cli("history", "show", str(entry["id"])).stdout
    started = next(line for line in shown.splitlines() if line.startswith("started"))
    assert re.search(r"\d\d:\d\d:\d\d [+-]\d{4}$", started), started
