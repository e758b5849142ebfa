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


def test_run_json_carries_the_sha256_of_each_stream(cli):
    import hashlib

    r = cli("run", "-s", "local", "--json", "printf out; printf err >&2")
    (s,) = r.json()["data"]["servers"]
    assert s["stdout_sha256"] == hashlib.sha256(b"out").hexdigest()
    assert s["stderr_sha256"] == hashlib.sha256(b"err").hexdigest()


def test_man_pages_list_every_exit_status_and_groff_reads_them_without_a_warning(tmp_path):
    import shutil

    import pytest

    from vpsagent.cli.gendocs import man_pages
    from vpsagent.errors import ExitCode

    pages = man_pages()
    status = pages["vpsagent.1"].split(".SH EXIT STATUS", 1)[1].split(".SH ", 1)[0]
    for code in [*(int(c) for c in ExitCode), 141]:
        assert f"\\fB{code}\\fR" in status, code
    assert all(ord(c) < 128 for text in pages.values() for c in text), "raw UTF-8 in a man page"
    if shutil.which("groff") is None:
        pytest.skip("groff is not installed")
    for name, text in pages.items():
        (tmp_path / name).write_text(text)
        for device in ("ascii", "utf8"):
            p = subprocess.run(["groff", "-man", f"-T{device}", "-ww", str(tmp_path / name)],
                               capture_output=True, text=True, check=False)
            assert p.stderr == "", f"{name} ({device}): {p.stderr}"


def test_every_command_the_readme_and_docs_show_exists():
    """The README and docs/ show only what is built: each `vpsagent GROUP SUB` resolves."""
    import click

    from vpsagent.cli import cli

    root_dir = Path(__file__).parents[2]
    text = "\n".join(p.read_text() for p in [root_dir / "README.md", *sorted((root_dir / "docs").glob("*.md"))])
    code = "\n".join(re.findall(r"```[a-z]*\n(.*?)```", text, re.S) + re.findall(r"`([^`\n]+)`", text))
    # where a command starts: a line, a pipe or `;`/`&&`, `$(`, or after VAR=value
    start = r"(?:^\s*(?:\$\s+)?|[|;&(]\s*|[A-Z_]+=\S+\s+)"
    shown = set(re.findall(start + r"vpsagent((?: [a-z][a-z-]*){1,2})", code, re.M))
    assert len(shown) > 20
    root = click.Context(cli, info_name="vpsagent")
    for words in sorted(shown):
        first, *rest = words.split()
        cmd = cli.get_command(root, first)
        assert cmd is not None, f"README shows `vpsagent {first}`, which does not exist"
        if rest and isinstance(cmd, click.Group) and not hasattr(cmd, "question"):
            sub_ctx = click.Context(cmd, info_name=first, parent=root)
            assert cmd.get_command(sub_ctx, rest[0]) is not None, f"README shows `vpsagent {words.strip()}`"


def test_untag_a_tag_the_server_does_not_have_says_so(cli):
    assert cli("servers", "add", "w1", "--host", "203.0.113.7", "-t", "web").exit_code == 0
    r = cli("servers", "edit", "w1", "--untag", "nosuch")
    assert r.exit_code == 2 and "w1 has no tag nosuch" in r.stderr and "web" in r.stderr, r.stderr
    assert cli("servers", "show", "w1", "--json").json()["data"]["server"]["tags"] == ["web"]


def test_a_public_key_file_is_refused_naming_the_private_one(cli, tmp_path):
    key = tmp_path / "id_web"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    r = cli("servers", "add", "w2", "--host", "203.0.113.8", "--key", f"{key}.pub")
    assert r.exit_code == 2, r.stderr
    assert "give the private key, not the .pub file" in r.stderr and f"--key {key}" in r.stderr


def test_doctor_json_values_are_bare_and_notes_are_apart(cli, home):
    data = cli("doctor", "--json").json()["data"]
    assert data["settings"]["database_url"].startswith(("sqlite:", "postgresql"))
    assert "[" not in data["settings"]["database_url"]
    assert data["sources"]["database_url"] == "env DATABASE_URL"  # the test sets it
    assert data["settings"]["model"] and data["sources"]["model"] == "default"
    assert data["settings"]["anthropic_api_key"] is None and data["settings"]["secret"] is None
    assert data["paths"]["config file"] == str(home / "config" / "config.toml")
    assert data["notes"]["config file"] == "absent"
    text = cli("doctor").stdout
    assert "config.toml (absent)" in text and "[env DATABASE_URL]" in text


def test_doctor_servers_reports_each_host_key_and_connection_time(cli, engine, keyring, sshd):
    from tests.sshd import register_sshd

    register_sshd(engine, keyring, sshd, "pinned1")
    register_sshd(engine, keyring, sshd, "fresh1", address="127.0.0.2", pin=False)
    r = cli("doctor", "--servers", "--json")
    assert r.exit_code == 0, r.stdout
    checks = {c["name"]: c for c in r.json()["data"]["checks"]}
    assert checks["server pinned1"]["status"] == "ok"
    assert sshd.host_key_fingerprint in checks["server pinned1"]["detail"]
    assert re.search(r"connected in \d+ ms", checks["server pinned1"]["detail"])
    assert checks["server fresh1"]["status"] == "warn" and "not pinned" in checks["server fresh1"]["detail"]
    # a doctor only looks: the unpinned key is still unpinned
    assert cli("servers", "show", "fresh1", "--json").json()["data"]["server"]["host_key_fingerprint"] is None


def test_doctor_colours_fail_and_warn_on_a_terminal(tmp_path):
    env = {"VPSAGENT_HOME": str(tmp_path / "h"), "VPSAGENT_SMTP_URL": "http://not-smtp", "TERM": "xterm"}
    for var in ("NO_COLOR", "DATABASE_URL", "ANTHROPIC_API_KEY"):
        env[var] = ""
    master, slave = pty.openpty()
    full = {k: v for k, v in {**os.environ, **env}.items() if v}
    proc = subprocess.Popen([sys.executable, "-m", "vpsagent", "doctor"], stdin=slave, stdout=slave, stderr=slave,
                            env=full, start_new_session=True)
    os.close(slave)
    from tests.agent._helpers import read_until

    try:
        raw = read_until(master, None).decode()
        assert proc.wait(timeout=60) == 1
    finally:
        os.close(master)
    fail = next(line for line in raw.splitlines() if "FAIL" in line)
    warn = next(line for line in raw.splitlines() if "warn" in line)
    assert "\x1b[" in fail and "\x1b[" in warn, (fail, warn)


def test_a_json_usage_error_names_the_command_path_only(cli):
    r = cli("run", "x", "y", "--json", "--bogus")
    assert r.exit_code == 2 and r.json()["command"] == "run"
    r = cli("servers", "show", "web1", "--json", "--bogus")
    assert r.json()["command"] == "servers show"
    r = cli("--token-file", "t", "servers", "--json", "--bogus")
    assert r.json()["command"] == "servers"


def test_clicks_usage_errors_read_like_ours(cli):
    r = cli("run")
    assert r.exit_code == 2
    first, *rest = r.stderr.splitlines()
    assert first == "error: missing argument 'COMMAND...'", r.stderr
    assert "usage: vpsagent run [OPTIONS] COMMAND..." in rest
    assert "Error:" not in r.stderr and "Usage:" not in r.stderr


def test_hints_are_never_in_nested_parentheses_nor_after_two_periods():
    from vpsagent.errors import UsageError
    from vpsagent.outcomes import DenyCause
    from vpsagent.safety.policy import Decision, Verdict

    assert UsageError("no such key.", hint="see --help").line() == "no such key (see --help)"
    assert UsageError("unknown server 'x' (a typo?)", hint="see list").line() == "unknown server 'x' (a typo?); see list"
    assert UsageError("bad", hint="try `x` (or y)").line() == "bad; try `x` (or y)"
    assert Verdict(Decision.DENY, "Denied: it wipes the disk..", None, DenyCause.DENY_RULE).reason.endswith("disk.")


def test_an_unreachable_server_is_named_once_per_line(cli):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert cli("servers", "add", "gone", "--host", "127.0.0.1", "--port", str(port)).exit_code == 0
    r = cli("run", "-s", "gone", "-s", "local", "true")
    assert r.exit_code == 5
    line = next(x for x in r.stderr.splitlines() if x.startswith("gone:"))
    assert line.count("gone") == 1 and "unreachable: connection refused" in line, line
    assert "2 servers: 1 ok, 1 unreachable" in r.stderr


def test_declining_servers_remove_on_a_terminal_is_not_told_to_pass_yes(cli):
    assert cli("servers", "add", "keep1", "--host", "203.0.113.9").exit_code == 0
    from tests.agent._helpers import read_until

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "vpsagent", "servers", "remove", "keep1"], stdin=slave,
                            stdout=slave, stderr=slave, env=dict(os.environ), start_new_session=True)
    os.close(slave)
    try:
        read_until(master, b"[y/N]")
        os.write(master, b"n\n")
        rest = read_until(master, None).decode()
        assert proc.wait(timeout=60) == 4
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert "you answered no" in rest and "--yes" not in rest, rest
    assert "keep1" in cli("servers", "list").stdout
    r = cli("servers", "remove", "keep1")  # no terminal: --yes is the way
    assert r.exit_code == 4 and "--yes" in r.stderr


def test_counts_read_as_english():
    from vpsagent.wording import plural

    assert [plural(n, "step") for n in (0, 1, 2)] == ["0 steps", "1 step", "2 steps"]
    assert plural(1, "try", "tries") == "1 try" and plural(3, "try", "tries") == "3 tries"
    assert plural(2, "entry") == "2 entries"
