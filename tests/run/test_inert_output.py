"""Escape sequences from servers never reach a terminal (issue 10, item 6): many-server
`run` output, `history show`, the text test report and `test show` go through one
function (`redact.inert`); one server's `run` to a pipe keeps the raw bytes."""

from __future__ import annotations

from pathlib import Path

from tests.sshd import SSHD, register_sshd
from vpsagent.redact import inert

ESC_CMD = r"printf 'a\033]0;pwned\007b\033[2Jc\n'"


def test_inert_shows_control_bytes_and_keeps_layout() -> None:
    assert inert("a\x1b[31mb\x9b\x07\tc\nd\r") == "a\\x1b[31mb\\x9b\\x07\tc\nd\\x0d"
    assert inert(None) == ""


def test_many_servers_are_inert_and_one_server_to_a_pipe_is_raw(cli, engine, keyring, sshd: SSHD) -> None:
    for i in (1, 2):
        register_sshd(engine, keyring, sshd, f"t{i}", address=f"127.0.0.{i}")
    many = cli("run", "-s", "t1", "-s", "t2", ESC_CMD)
    assert many.exit_code == 0, many.stderr
    assert "\x1b" not in many.stdout and "\x07" not in many.stdout
    assert many.stdout.count("a\\x1b]0;pwned\\x07b\\x1b[2Jc") == 2
    one = cli("run", "-s", "t1", ESC_CMD)
    assert one.stdout == "a\x1b]0;pwned\x07b\x1b[2Jc\n"  # the bytes, as the user asked


def test_history_show_and_test_reports_are_inert(cli, tmp_path: Path) -> None:
    assert cli("run", "-s", "local", ESC_CMD).exit_code == 0
    shown = cli("history", "show", "1")
    assert "\x1b" not in shown.stdout and "\\x1b[2J" in shown.stdout
    plan = tmp_path / "esc.yaml"
    plan.write_text(f"name: esc\nsteps:\n  - name: esc\n    run: |\n      {ESC_CMD}; exit 1\n")
    report = tmp_path / "report.txt"
    r = cli("test", "run", str(plan), "-s", "local", "--report", f"text:{report}")
    assert r.exit_code == 1, r.stdout + r.stderr
    for text in (r.stdout, r.stderr, report.read_text(), cli("test", "show", "1").stdout):
        assert "\x1b" not in text and "\x07" not in text
    assert "\\x1b[2J" in r.stdout
