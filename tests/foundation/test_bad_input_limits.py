"""Bad input ends in one `error:` line and exit 2 before anything runs (issue 10, items
7–9): files that are not regular or are too large are refused unread, plans have a
bounded number of steps, durations are finite, positive and sane, and ids that cannot
name a row are "no such ..." rather than an internal error with SQL in it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def _one_line(r, code: int = 2) -> None:
    assert r.exit_code == code, (r.exit_code, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr + r.stdout


# -- item 7: plan files and other YAML the user hands us ---------------------------------

def test_devices_fifos_and_huge_files_are_refused_before_parsing(cli, tmp_path: Path) -> None:
    fifo = tmp_path / "plan.fifo"
    os.mkfifo(fifo)  # no writer: reading it would wait forever
    for path in ("/dev/zero", str(fifo)):
        r = cli("test", "validate", path)
        _one_line(r)
        assert "not a regular file" in r.stdout + r.stderr
    huge = tmp_path / "huge.yaml"
    huge.write_text("name: x\nsteps:\n  - run: 'true'\n" + "# padding\n" * 120_000)  # ~1.2 MB
    r = cli("test", "validate", str(huge))
    _one_line(r)
    assert "limit of 1 MiB" in r.stdout + r.stderr and "VPSAGENT_MAX_FILE_SIZE" in r.stdout + r.stderr
    assert cli("test", "validate", str(huge), env={"VPSAGENT_MAX_FILE_SIZE": "2MiB"}).exit_code == 0
    r = cli("test", "run", "/dev/zero", "-s", "local")
    _one_line(r)
    r = cli("deploy", "validate", "/dev/zero")
    _one_line(r)
    assert "not a regular file" in r.stdout + r.stderr


def test_key_files_and_ssh_configs_are_read_bounded_too(cli, tmp_path: Path) -> None:
    fifo = tmp_path / "key.fifo"
    os.mkfifo(fifo)
    for path in ("/dev/zero", str(fifo)):
        r = cli("servers", "add", "z", "--host", "198.51.100.9", "--key", path)
        _one_line(r)
        assert "not a regular file" in r.stderr
        r = cli("servers", "import", "--ssh-config", path)
        _one_line(r)
        assert "not a regular file" in r.stderr
    big = tmp_path / "big_key"
    big.write_bytes(b"x" * (65 * 1024))
    r = cli("servers", "add", "z", "--host", "198.51.100.9", "--key", str(big))
    _one_line(r)
    assert "limit of 64 KiB" in r.stderr and "VPSAGENT_MAX_FILE_SIZE" not in r.stderr


def test_a_plan_has_at_most_1000_steps(cli, tmp_path: Path) -> None:
    plan = tmp_path / "many.yaml"
    plan.write_text("name: many\nsteps:\n" + "  - run: 'true'\n" * 1001)
    r = cli("test", "validate", str(plan))
    _one_line(r)
    assert "1001 steps is more than the 1000" in r.stdout + r.stderr
    plan.write_text("name: many\nsteps:\n" + "  - run: 'true'\n" * 1000)
    assert cli("test", "validate", str(plan)).exit_code == 0


def test_a_nul_in_a_plan_is_a_problem_not_a_crash(cli, tmp_path: Path) -> None:
    plan = tmp_path / "nul.yaml"
    plan.write_text('name: nul\nsteps:\n  - run: "echo a\\0b"\n')
    r = cli("test", "run", str(plan), "-s", "local")
    _one_line(r)
    assert "nul.yaml:3:" in r.stdout + r.stderr


# -- item 8: durations ---------------------------------------------------------------------

@pytest.mark.parametrize("value", ["inf", "nan", "-1", "0", "1e400", "8d", "soon"])
def test_run_timeout_must_be_a_sane_duration(cli, home: Path, value: str) -> None:
    marker = home / "ran"
    r = cli("run", "-s", "local", "--timeout", value, f"touch {marker}")
    _one_line(r)
    assert "--timeout" in r.stderr and not marker.exists()


def test_run_timeout_takes_durations(cli) -> None:
    assert cli("run", "-s", "local", "--timeout", "1m30s", "true").exit_code == 0
    assert cli("run", "-s", "local", "--timeout", "2.5", "true").exit_code == 0


@pytest.mark.parametrize("value", [".inf", ".nan", "-5", "'inf'", "'nan'", "2d"])
def test_plan_durations_must_be_sane(cli, tmp_path: Path, value: str) -> None:
    plan = tmp_path / "d.yaml"
    plan.write_text(f"name: d\ntimeout: {value}\nsteps:\n  - run: 'true'\n    retry: {{attempts: 2, interval: {value}}}\n")
    r = cli("test", "run", str(plan), "-s", "local")
    _one_line(r)
    assert "d.yaml:2:" in r.stdout + r.stderr and "d.yaml:5:" in r.stdout + r.stderr


def test_other_number_flags_refuse_inf_and_nan(cli) -> None:
    _one_line(cli("servers", "check", "--timeout", "inf", "local"))
    _one_line(cli("ask", "-s", "local", "--max-cost", "nan", "hi"))


# -- item 9: ids ----------------------------------------------------------------------------

HUGE = "99999999999999999999999"


@pytest.mark.parametrize("args", [
    ("history", "show", HUGE), ("history", "show", "2147483648"), ("history", "show", "0"),
    ("test", "show", HUGE), ("conversations", "show", HUGE), ("conversations", "export", HUGE),
    ("ask", "-s", "local", "--conversation", HUGE, "hi"), ("chat", "--conversation", HUGE),
    ("deploy", "show", HUGE), ("support", "show", HUGE),
])
def test_ids_that_name_no_row_are_no_such(cli, args: tuple[str, ...]) -> None:
    r = cli(*args)
    _one_line(r)
    assert r.stderr.startswith("error: no ") and "SELECT" not in r.stderr
    doc = cli(*args, "--json").json() if args[0] != "ask" else cli("ask", "--json", *args[1:]).json()
    assert doc["exit_code"] == 2 and doc["errors"][0]["code"] == "not_found"


def test_huge_limits_and_since_are_not_internal_errors(cli) -> None:
    assert cli("history", "--limit", HUGE).exit_code == 0
    assert cli("test", "history", "--limit", HUGE).exit_code == 0
    assert cli("conversations", "list", "--limit", HUGE).exit_code == 0
    _one_line(cli("history", "--since", "99999999999999w"))
