"""The CLI contract: generated docs are fresh, --help stays light, output is plain off a TTY."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("anthropic", "fabric", "paramiko", "invoke", "sqlalchemy", "sqlmodel", "github", "alembic",
         "cryptography", "psycopg", "yaml", "rich")


def test_completions_and_man_pages_are_current(tmp_path):
    from vpsagent.cli.gendocs import generate

    generate(tmp_path)
    for sub in ("completions", "man"):
        fresh = {p.name: p.read_text() for p in (tmp_path / sub).iterdir()}
        checked_in = {p.name: p.read_text() for p in (ROOT / sub).iterdir()}
        assert fresh.keys() == checked_in.keys(), f"{sub}/ is stale: run `python -m vpsagent.cli.gendocs`"
        for name in fresh:
            assert fresh[name] == checked_in[name], f"{sub}/{name} is stale: run `python -m vpsagent.cli.gendocs`"
    assert "_VPSAGENT_COMPLETE" in (tmp_path / "completions" / "vpsagent.bash").read_text()
    assert ".SH EXIT STATUS" in (tmp_path / "man" / "vpsagent.1").read_text()


def test_help_imports_no_heavy_library():
    """`vpsagent --help` lists every command without importing anthropic, fabric, sqlalchemy, rich..."""
    code = (
        "import sys, io, contextlib\n"
        "from vpsagent.cli import execute\n"
        "with contextlib.redirect_stdout(io.StringIO()) as buf:\n"
        "    rc = execute(['--help'])\n"
        f"heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
        "print(rc, heavy, 'servers' in buf.getvalue())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "0 [] True"


def test_version_and_module_entry(run_vpsagent):
    r = run_vpsagent("--version")
    assert r.returncode == 0 and b"vpsagent" in r.stdout and b"0.1.0" in r.stdout


def test_plain_output_off_a_tty_and_json_is_one_document(run_vpsagent):
    r = run_vpsagent("doctor", env={"NO_COLOR": "1"})
    assert r.returncode == 0, r.stderr
    assert b"\x1b[" not in r.stdout + r.stderr
    r = run_vpsagent("servers", "list", "--json")
    doc = json.loads(r.stdout)  # exactly one JSON document
    assert doc["vpsagent"] == 1 and doc["command"] == "servers list" and doc["ok"] is True


def test_unknown_command_is_usage_exit_2(cli):
    r = cli("no-such-command")
    assert r.exit_code == 2 and "error: no such command" in r.stderr and "Error:" not in r.stderr


def test_environment_problems_are_one_line_not_a_bug(cli, tmp_path):
    cases = [
        ({"DATABASE_URL": "mysql://x@127.0.0.1/db"}, 2, "unsupported database 'mysql'"),
        ({"DATABASE_URL": "nonsense"}, 2, "not a database URL"),
        ({"DATABASE_URL": "sqlite:////proc/no/such/x.db"}, 2, "/proc/no/such does not exist"),
        ({"VPSAGENT_HOME": "/proc/no-such-home", "DATABASE_URL": ""}, 1, "cannot create the database directory"),
    ]
    for env, code, needle in cases:
        r = cli("servers", "list", env=env)
        assert (r.exit_code, r.stderr.count("\n")) == (code, 1), r.stderr
        assert needle in r.stderr and "internal error" not in r.stderr
    r = cli("servers", "add", "x", "--host", "h", "--password-stdin", input="pw\n",
            env={"VPSAGENT_HOME": "/proc/no-such-home", "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    assert r.exit_code == 2 and "cannot create the key file" in r.stderr


def test_closed_stdout_and_full_disk(run_vpsagent, home):
    import os

    r = subprocess.run([sys.executable, "-m", "vpsagent", "run", "-s", "local", "echo hi"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, env=dict(os.environ), timeout=60, pass_fds=(), close_fds=True,
                       preexec_fn=lambda: os.close(1))
    assert r.returncode == 0 and b"Traceback" not in r.stderr
    with open("/dev/full", "w") as full:
        r = subprocess.run([sys.executable, "-m", "vpsagent", "servers", "list", "--json"], stdout=full,
                           stderr=subprocess.PIPE, env=dict(os.environ), timeout=60)
    assert r.returncode == 1 and r.stderr.decode().startswith("error: cannot write output")


def test_tables_do_not_fold_when_piped(cli):
    long_tag = "t" * 60
    assert cli("servers", "add", "a-server-with-a-long-name", "--host", "198.51.100.77", "-t", long_tag,
               "-t", "x" * 50).exit_code == 0
    out = cli("servers", "list").stdout
    (line,) = [ln for ln in out.splitlines() if ln.startswith("a-server")]
    assert long_tag in line and "not pinned" in line


def test_reader_going_away_is_exit_141(home):
    """`vpsagent ... | head -1`: quiet, and the shell's SIGPIPE status rather than a failure."""
    import os

    for _ in range(3):
        subprocess.run([sys.executable, "-m", "vpsagent", "run", "-s", "local", "true"], check=True,
                       env=dict(os.environ), capture_output=True)
    script = f"{sys.executable} -m vpsagent run -s local 'seq 1 200000' | head -1; echo ${{PIPESTATUS[0]}}"
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=dict(os.environ), timeout=60)
    assert r.stdout.split() == ["1", "141"], (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "error" not in r.stderr


def test_usage_errors_in_subcommands_of_groups_are_json_too(cli):
    for args in (["history", "show", "abc", "--json"], ["history", "verify", "--bogus", "--json"],
                 ["servers", "show", "--json"]):
        r = cli(*args)
        doc = r.json()
        assert r.exit_code == 2 and doc["ok"] is False and doc["errors"][0]["code"] == "usage", args
    assert cli("history", "show", "abc", "--json").json()["command"] == "history show"
