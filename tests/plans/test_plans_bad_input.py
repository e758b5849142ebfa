"""Bad input: exit 2, every problem as `file:line:col: message`, and nothing run or recorded.

Each bad plan starts with a valid step that would create a marker file: the marker
must never appear, which proves validation happens before the first command.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

# (plan body after the marker step, expected "line:col", a piece of the message)
BAD_PLANS = {
    "yaml_syntax": ("  - run: [unclosed\n", "5:1", "YAML syntax error"),
    "yaml_indent": ("   bad: indent\n", "4:4", "YAML syntax error"),
    "no_kind": ("  - name: nothing here\n    timeout: 5s\n", "4:5",
                "step 2 ('nothing here') has no kind: give exactly one of run, http, file"),
    "two_kinds": ("  - run: echo hi\n    port: {port: 22}\n", "5:5",
                  "step 2 has 2 kinds (run, port): give exactly one"),
    "unknown_step_key": ("  - run: echo hi\n    expcet: {exit: 0}\n", "5:5",
                         "unknown key 'expcet' in step 2"),
    "unknown_kind_key": ("  - file: {path: /etc/hosts, owner: root, permissions: '0644'}\n", "4:43",
                         "unknown key 'permissions' in file"),
    "bad_duration": ("  - run: echo hi\n    timeout: 10 minutes\n", "5:14",
                     "bad duration '10 minutes'"),
    "bad_retry_interval": ("  - run: echo hi\n    retry: {attempts: 3, interval: soon}\n", "5:36",
                           "bad duration 'soon'"),
    "bad_regex": ("  - run: echo hi\n    expect:\n      stdout: {matches: '([a-z]+'}\n", "6:25",
                  "bad regex '([a-z]+' in expect.stdout.matches"),
    "bad_capture_regex": ("  - run: echo hi\n    capture: {v: '(['}\n", "5:18", "bad regex '(['"),
    "undefined_variable": ("  - name: greet\n    run: echo {{ who }}\n", "5:10",
                           "undefined variable 'who' in step 2 ('greet')"),
    "python_tag": ("  - run: !!python/object/apply:os.system ['touch {marker}2']\n", "4:10",
                   "tag !!python/object/apply:os.system is not allowed"),
    "python_object_new": ("  - run: !!python/object/new:subprocess.Popen [['touch', '{marker}2']]\n",
                          "4:10", "is not allowed: plans load with safe YAML only"),
}


def _plan(marker: Path, rest: str) -> str:
    return "name: bad\nsteps:\n  - run: touch " + str(marker) + "\n" + rest.replace("{marker}", str(marker))


@pytest.mark.parametrize("case", sorted(BAD_PLANS))
def test_bad_plan_exits_2_with_position_and_runs_nothing(case, cli, write_plan, tmp_path):
    rest, where, message = BAD_PLANS[case]
    marker = tmp_path / "marker"
    path = write_plan(_plan(marker, rest))

    r = cli("test", "run", path, "-s", "local")
    assert r.exit_code == 2, r.stderr
    assert f"{path}:{where}: " in r.stderr
    line = next(x for x in r.stderr.splitlines() if x.startswith(f"{path}:{where}: "))
    assert message in line
    assert "error: 1 problem in the plan; nothing was run" in r.stderr
    assert "Traceback" not in r.stderr
    assert not marker.exists()
    assert not Path(str(marker) + "2").exists()  # the !!python payloads never ran

    v = cli("test", "validate", path)
    assert v.exit_code == 2
    assert f"{path}:{where}: {line.split(': ', 1)[1]}" in v.stdout

    # nothing was recorded either
    h = cli("test", "history", "--json")
    assert h.exit_code == 0 and h.json()["data"]["runs"] == []


def test_empty_steps(cli, write_plan):
    path = write_plan("name: empty\nsteps: []\n")
    r = cli("test", "run", path, "-s", "local")
    assert r.exit_code == 2
    assert f"{path}:2:8: steps is empty: a plan needs at least one step" in r.stderr


def test_missing_steps_and_name(cli, write_plan):
    path = write_plan("description: no name, no steps\n")
    r = cli("test", "validate", path)
    assert r.exit_code == 2
    assert f"{path}:1:1: missing required key 'name'" in r.stdout
    assert f"{path}:1:1: missing required key 'steps'" in r.stdout


def test_every_problem_is_listed_at_once(cli, write_plan, tmp_path):
    marker = tmp_path / "marker"
    path = write_plan(
        "name: many\n"
        "timeout: forever\n"
        "steps:\n"
        f"  - run: touch {marker}\n"
        "  - service: {name: nginx, running: true}\n"
        "  - run: echo {{ nope }}\n"
        "  - port: {port: 70000}\n"
    )
    r = cli("test", "run", path, "-s", "local")
    assert r.exit_code == 2
    found = [x for x in r.stderr.splitlines() if x.startswith(path + ":")]
    assert [re.match(r".*?:(\d+):\d+: ", x).group(1) for x in found] == ["2", "5", "6", "7"]
    assert "bad duration 'forever'" in found[0]
    assert "unknown key 'running' in service" in found[1]
    assert "undefined variable 'nope' in step 3" in found[2]
    assert "port must be 1-65535, not 70000" in found[3]
    assert "error: 4 problems in the plan; nothing was run" in r.stderr
    assert not marker.exists()


def test_json_mode_lists_problems(cli, write_plan):
    path = write_plan("name: j\nsteps:\n  - run: echo hi\n    timeout: 5 parsecs\n")
    r = cli("test", "run", path, "-s", "local", "--json")
    assert r.exit_code == 2
    doc = r.json()
    assert doc["ok"] is False and doc["exit_code"] == 2
    assert doc["errors"][0]["code"] == "invalid_plan"
    problems = doc["data"]["problems"]
    assert problems == [{"file": path, "line": 4, "col": 14,
                         "message": "bad duration '5 parsecs': use e.g. 30s, 2m, 1m30s, 500ms"}]


def test_variable_from_var_flag_makes_plan_valid(cli, write_plan):
    path = write_plan("name: v\nsteps:\n  - run: echo {{ who }}\n    expect: {stdout: world}\n")
    assert cli("test", "validate", path).exit_code == 2
    r = cli("test", "validate", path, "--var", "who=world")
    assert r.exit_code == 0, r.stdout
    assert f"ok: {path} ('v', 1 step)" in r.stdout


def test_alias_bomb_is_refused_quickly(cli, write_plan):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    path = write_plan("\n".join(lines) + "\nname: bomb\nsteps:\n  - run: echo hi\n")
    r = cli("test", "validate", path)
    assert r.exit_code == 2
    assert f"{path}:1:1: the plan is too large (alias expansion?)" in r.stdout


def test_not_utf8_and_missing_file(cli, tmp_path):
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("name: caf\xe9\nsteps: [{run: echo}]\n".encode("latin-1"))
    r = cli("test", "run", str(bad), "-s", "local")
    assert r.exit_code == 2
    assert f"{bad}:1:1: the plan is not UTF-8 text" in r.stderr
    missing = tmp_path / "nope.yaml"
    r = cli("test", "run", str(missing), "-s", "local")
    assert r.exit_code == 2
    assert f"{missing}: cannot read the plan: No such file or directory" in r.stderr


def test_unused_var_flag_is_a_typo_not_a_no_op(cli, write_plan):
    path = write_plan("name: v\nvars: {version: '1.0'}\nsteps:\n  - run: echo {{ version }} {{ other }}\n"
                      "    expect: {stdout: {contains: '1.0'}}\n", "v.yaml")
    r = cli("test", "run", path, "-s", "local", "--var", "verison=2.0", "--var", "other=x")
    assert r.exit_code == 2 and "--var verison is not used" in r.stderr and "version" in r.stderr
    assert cli("test", "history", "--json").json()["data"]["runs"] == []  # nothing ran
    r = cli("test", "run", path, "-s", "local", "--var", "version=1.0", "--var", "other=x")
    assert r.exit_code == 0, r.stderr


def test_unwritable_report_is_refused_before_anything_runs(cli, write_plan, tmp_path):
    path = write_plan("name: w\nsteps:\n  - run: 'true'\n", "w.yaml")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    r = cli("test", "run", path, "-s", "local", "--report", f"junit:{blocker}/sub/r.xml")
    assert r.exit_code == 2 and "cannot write" in r.stderr
    assert cli("test", "history", "--json").json()["data"]["runs"] == []
    out = tmp_path / "reports" / "r.xml"
    assert cli("test", "run", path, "-s", "local", "--report", f"junit:{out}").exit_code == 0
    assert out.stat().st_mode & 0o044  # readable by the CI user's group and others, as any report


def test_unknown_server_in_plan(cli, write_plan, tmp_path):
    marker = tmp_path / "marker"
    path = write_plan(f"name: s\nservers: [local, nosuch]\nsteps:\n  - run: touch {marker}\n")
    r = cli("test", "run", path)
    assert r.exit_code == 2
    assert f"{path}:2:18: unknown server 'nosuch'" in r.stderr
    assert not marker.exists()


def test_unknown_tag_in_plan(cli, write_plan, tmp_path):
    marker = tmp_path / "marker"
    path = write_plan(f"name: s\ntags: [web, db]\nsteps:\n  - run: touch {marker}\n")
    r = cli("test", "run", path)
    assert r.exit_code == 2
    assert f"{path}:2:8: no server has tag 'web'" in r.stderr
    assert f"{path}:2:13: no server has tag 'db'" in r.stderr
    assert not marker.exists()


def test_plan_without_servers_needs_s_or_t(cli, write_plan, tmp_path):
    marker = tmp_path / "marker"
    path = write_plan(f"name: s\nsteps:\n  - run: touch {marker}\n")
    r = cli("test", "run", path)
    assert r.exit_code == 2
    assert "the plan names no servers" in r.stderr
    assert not marker.exists()


def test_unknown_server_or_tag_on_command_line(cli, write_plan, tmp_path):
    marker = tmp_path / "marker"
    path = write_plan(f"name: s\nservers: [local]\nsteps:\n  - run: touch {marker}\n")
    r = cli("test", "run", path, "-s", "nosuch")
    assert r.exit_code == 2
    assert "error: unknown server 'nosuch'" in r.stderr
    r = cli("test", "run", path, "-t", "nosuchtag")
    assert r.exit_code == 2
    assert "error: no server has tag 'nosuchtag'" in r.stderr
    assert not marker.exists()


@pytest.mark.parametrize("args, message", [
    (("--var", "novalue"), "bad --var 'novalue': use --var name=value"),
    (("--var", "1x=2"), "bad --var '1x=2'"),
    (("--report", "pdf:out.pdf"), "bad --report 'pdf:out.pdf'"),
    (("--report", "junit"), "bad --report 'junit'"),
    (("--forks", "0"), "--forks must be at least 1"),
])
def test_bad_flags(cli, write_plan, tmp_path, args, message):
    marker = tmp_path / "marker"
    path = write_plan(f"name: s\nservers: [local]\nsteps:\n  - run: touch {marker}\n")
    r = cli("test", "run", path, *args)
    assert r.exit_code == 2
    assert message in r.stderr
    assert not marker.exists()


@pytest.mark.parametrize("command", ["run", "validate"])
def test_directory_without_plans_is_an_error(cli, tmp_path, command):
    """A CI job pointed at the wrong directory must not pass by running nothing."""
    empty = tmp_path / "no-plans-here"
    empty.mkdir()
    (empty / "README.txt").write_text("plans live elsewhere\n")
    r = cli("test", command, str(empty), *(["-s", "local"] if command == "run" else []))
    assert r.exit_code == 2
    assert f"error: no plans (*.yaml, *.yml) in {empty}" in r.stderr


# (steps, expected problem) — each is the only problem in its plan
MORE_BAD_STEPS = {
    "retry_zero": ("  - run: x\n    retry: {attempts: 0}\n",
                   "4:23: retry.attempts: expected a whole number of at least 1, got int 0"),
    "retry_and_eventually": ("  - run: x\n    retry: {attempts: 2}\n    eventually: 5s\n",
                             "5:5: step 1: use retry or eventually, not both"),
    "capture_two_groups": ("  - run: x\n    capture: {v: '(a)(b)'}\n",
                           "4:18: capture.v: use at most one (group), or (?:...) for the others"),
    "exit_not_a_number": ("  - run: x\n    expect: {exit: abc}\n",
                          "4:20: expect.exit: expected a whole number or a list of them, got str 'abc'"),
    "zero_timeout": ("  - run: x\n    timeout: 0\n", "4:14: bad duration 0: must be more than zero"),
    "port_not_a_number": ("  - port: {port: abc}\n", "3:18: port.port: expected a whole number, got str 'abc'"),
    "http_from": ("  - http: {url: 'http://x/', from: elsewhere}\n",
                  "3:36: from must be 'server' or 'local', not 'elsewhere'"),
    "file_mode": ("  - file: {path: /x, mode: '999'}\n", "3:28: mode must be an octal string like \"0644\", not '999'"),
    "package_version": ("  - package: {name: x, version: '>= 1.0 beta'}\n",
                        "3:33: bad version constraint '>= 1.0 beta': use e.g. '>=1.18' or '1.18.0-1'"),
    "duplicate_key": ("  - run: x\n    run: y\n", "4:5: duplicate key 'run'"),
    "empty_skip": ("  - run: x\n    skip: ''\n", "4:11: skip: expected true, false or a reason"),
    "sudo_not_bool": ("  - run: x\n    sudo: yes please\n", "4:11: sudo: expected true or false"),
    "bad_reference": ("  - run: echo {{ a b }}\n", "3:10: step 1: bad variable reference '{{ a b }}': use {{ name }}"),
    "unknown_matcher": ("  - run: x\n    expect: {stdout: {startswith: a}}\n",
                        "4:23: unknown key 'startswith' in expect.stdout (allowed: contains, not_contains, "
                        "equals, matches, lt, le, gt, ge)"),
    "lt_not_a_number": ("  - run: x\n    expect: {stdout: {lt: ten}}\n",
                        "4:27: expect.stdout.lt: expected a number, got str 'ten'"),
    "run_not_a_string": ("  - run: {cmd: x}\n", "3:10: step 1: run needs a command string, got a mapping"),
    "http_without_url": ("  - http: {status: 200}\n", "3:11: step 1: http needs 'url'"),
    "unknown_plan_key": ("  - run: x\nhosts: [a]\n",
                         "4:1: unknown key 'hosts' in the plan (allowed: name, description, servers, tags, "
                         "vars, timeout, fail_fast, steps)"),
}


@pytest.mark.parametrize("case", sorted(MORE_BAD_STEPS))
def test_more_validation_errors(case):
    from vpsagent.plans.schema import validate_text

    steps, expected = MORE_BAD_STEPS[case]
    plan, problems = validate_text("name: x\nsteps:\n" + steps, "p.yaml")
    assert plan is None
    assert [str(p) for p in problems] == [f"p.yaml:{expected}"]


def test_validate_json(cli, write_plan):
    good = write_plan("name: good\nsteps:\n  - run: 'true'\n", "good.yaml")
    bad = write_plan("name: bad\nsteps: []\n", "bad.yaml")
    r = cli("test", "validate", good, bad, "--json")
    assert r.exit_code == 2
    doc = r.json()
    assert doc["ok"] is False
    assert doc["data"]["plans"] == [{"name": "good", "path": good, "steps": 1, "servers": [], "tags": []}]
    assert doc["data"]["problems"] == [{"file": bad, "line": 2, "col": 8,
                                        "message": "steps is empty: a plan needs at least one step"}]
    assert doc["errors"] == [{"code": "invalid_plan", "message": f"{bad}:2:8: steps is empty: a plan needs "
                                                                  "at least one step"}]
