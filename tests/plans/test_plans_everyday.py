"""`test` for daily use (issue 11): the terminal shows progress and a summary, validate
checks servers and tags, --json and --format settled, captures say what they lack, TAP."""

from __future__ import annotations

import json

import yaml

from tests.foundation.test_everyday_output import on_terminal

PLAN = """\
name: two steps
steps:
  - name: first
    run: echo one
  - name: second
    run: echo two
"""


def test_test_run_on_a_terminal_shows_progress_and_a_summary_not_the_report(cli, write_plan):
    path = write_plan(PLAN)
    code, screen = on_terminal("test", "run", path, "-s", "local")
    assert code == 0, screen
    assert screen.count("first") == 1 and screen.count("second") == 1, screen  # progress only
    assert "2 passed, 0 failed, 0 errors, 0 skipped" in screen
    # not a terminal, or --format given: the whole report
    assert cli("test", "run", path, "-s", "local").stdout.count("first") == 1
    code, screen = on_terminal("test", "run", path, "-s", "local", "--format", "text")
    assert screen.count("first") == 2, screen


def test_validate_reports_unknown_servers_and_tags(cli, write_plan, db_backend):
    path = write_plan("name: p\nservers: [web9]\ntags: [nosuch]\nsteps:\n  - run: 'true'\n")
    if db_backend == "sqlite":
        # no database file yet: warnings, exit 0, and no database created by validating
        # (a PostgreSQL database is always there: its inventory, empty here, is the reference)
        r = cli("test", "validate", path)
        assert r.exit_code == 0, r.stdout + r.stderr
        assert "warning: " in r.stderr and "server 'web9'" in r.stderr and "tag 'nosuch'" in r.stderr
    assert cli("servers", "list").exit_code == 0  # now there is an inventory
    r = cli("test", "validate", path, "--json")
    assert r.exit_code == 2
    messages = [p["message"] for p in r.json()["data"]["problems"]]
    assert any("unknown server 'web9'" in m for m in messages) and any("tag 'nosuch'" in m for m in messages)
    assert "ok:" not in cli("test", "validate", path).stdout


def test_json_and_format_tap_do_not_silently_drop_one(cli, write_plan, tmp_path):
    path = write_plan(PLAN)
    r = cli("test", "run", path, "-s", "local", "--json", "--format", "tap")
    assert r.exit_code == 2 and json.loads(r.stdout)["errors"][0]["code"] == "usage"
    assert "--output" in r.stdout
    out = tmp_path / "r.tap"
    r = cli("test", "run", path, "-s", "local", "--json", "--format", "tap", "-o", str(out))
    assert r.exit_code == 0 and r.json()["ok"] and out.read_text().startswith("TAP version 13")


def test_test_run_forks_default_is_run_forks(cli):
    from click.testing import CliRunner

    from vpsagent.cli import cli as root

    run_help = CliRunner().invoke(root, ["run", "--help"]).output
    test_help = CliRunner().invoke(root, ["test", "run", "--help"]).output
    assert "default 64" in run_help and "default 64" in test_help


def test_a_failed_capture_is_reported_as_the_capture(cli, write_plan, tmp_path):
    path = write_plan("""\
name: capture
steps:
  - name: get version
    run: echo no digits here
    capture: {version: '(\\d+)'}
  - name: use it
    run: echo {{ version }}
""")
    report = tmp_path / "r.json"
    r = cli("test", "run", path, "-s", "local", "--report", f"json:{report}")
    assert r.exit_code == 1
    steps = json.loads(report.read_text())["plans"][0]["servers"][0]["steps"]
    assert steps[0]["status"] == "failed" and "capture version" in steps[0]["message"]
    assert steps[1]["status"] == "skipped" and steps[1]["message"] == "not run: step 1 did not capture version"
    assert "undefined variable" not in r.stdout


def test_tap_diagnostics_keep_newlines_without_blank_lines(cli, write_plan):
    path = write_plan("name: tap\nsteps:\n  - name: multi\n    run: printf 'a\\nb\\n\\nc\\n'; exit 3\n"
                      "  - name: two lines\n    run: printf 'x\\ny\\n'; exit 3\n")
    r = cli("test", "run", path, "-s", "local", "--format", "tap")
    assert r.exit_code == 1
    lines = r.stdout.splitlines()
    assert "" not in lines, r.stdout
    blocks, block = [], None
    for line in lines:
        if line == "  ---":
            block = []
        elif line == "  ..." and block is not None:
            blocks.append(yaml.safe_load("\n".join(x[2:] for x in block)))
            block = None
        elif block is not None:
            block.append(line)
    assert blocks[0]["stdout"].rstrip() == "a\nb\n\nc" and blocks[1]["stdout"].rstrip() == "x\ny"


def test_test_show_and_history_give_times_without_microseconds(cli, write_plan):
    import re

    path = write_plan(PLAN)
    assert cli("test", "run", path, "-s", "local").exit_code == 0
    run_id = cli("test", "history", "--json").json()["data"]["runs"][0]["id"]
    shown = cli("test", "show", str(run_id)).stdout
    assert re.search(r"started \d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4},", shown), shown
    row = cli("test", "history").stdout.splitlines()[1].split("\t")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}", row[-1]), row
