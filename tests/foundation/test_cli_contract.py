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
        "from vpsagent.cli import run\n"
        "with contextlib.redirect_stdout(io.StringIO()) as buf:\n"
        "    rc = run(['--help'])\n"
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
    assert r.exit_code == 2 and "No such command" in r.stderr
