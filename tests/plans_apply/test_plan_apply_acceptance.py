"""Acceptance tests for issue 15 — `ask --plan`, `plan show/validate/list/history`, `apply`,
`ask --save-test`, `ask --canary NAME -t TAG` — written from the issue text alone (the
vpsagent/ sources were not read), against real parts: the session's OpenSSH sshd on
127.0.0.1..3 (three "servers"), SQLite, the real anthropic SDK talking to
tests/fakes/anthropic_api.py, the real CLI in-process (CliRunner) and as a subprocess on a
pseudo-terminal.

ASSUMPTIONS (docs/plans.md did not exist when these were written; map names here):

Plan file format (built by `plan_doc()` / `step()` below, the one place to rename fields):
- top-level keys, as the issue lists them: `request` (str), `model` (str), `conversation`
  (the conversation id; `null` in a hand-written plan), `selection` (the inventory
  selection, here `{servers: [...]}` or `{tags: [...]}`), `created` (ISO 8601 string),
  `steps` (list). No other key is required; a hand-written plan is a valid plan.
- a step: `servers` (a list of server names: the step's server selector), exactly one of
  `command` (str) or `write` (`{path, content}`), `why` (str), `expect` (str, the expected
  effect), `verify` (ONE test-plan step in the `test run` syntax, e.g.
  `{run: "...", expect: {exit: 0}}` or `{file: {path: ..., exists: true}}`), optional
  `undo` (str, a command).
- the plan's content hash is a hex digest reported as `data.hash` (or `data.plan_hash`) by
  `apply --json` and `plan show --json`; the audit rows of `apply` carry it (at least its
  first 12 characters appear in the row as `history --json` prints it).
- a plan written by `ask --plan` records its hash (in the file or in the database), so an
  edit made afterwards is a hash mismatch that `apply` refuses; a hand-written plan (no
  conversation) is applied as it is.

Planning (`ask --plan FILE`):
- the model submits the plan through a dedicated tool named `PLAN_TOOL` ("submit_plan"; if
  no tool has that name, the one tool whose name contains "plan" is used), whose input is
  `{"steps": [<step as above>]}`. vpsagent fills in request, model, conversation,
  selection and created itself.
- while planning every command that is not read-only is denied (an `is_error`
  tool_result, recorded), also with `--yes`; `write_file` is denied or not offered.

`apply FILE [--canary N] [--serial N] [--max-fail N|P%] [--yes] [--dry-run] [--json]`:
- servers are taken in selection order (web1, web2, web3); `--canary 1` is web1, then
  batches of `--serial`. Every step of a server runs, then its `verify` check, before the
  next step on that server.
- "completed steps" = the steps whose command ran successfully, so when a step's `verify`
  check fails, that step's own `undo` runs too (its command changed the server), then the
  earlier ones, in reverse order. When a step's command fails, its `undo` does not run.
- `--max-fail N` lets up to N servers fail (each undone) before apply stops; without it the
  first failing server stops apply. A bad value (`abc`, `150%`) is exit 2.
- the approval prompt on a terminal ends in `[y/N]` and comes once per plan; `--yes`
  approves `change` steps only; an `unknown` or `destructive` step with no allow rule makes
  apply exit 4 without running anything; without a terminal and without `--yes`, exit 4;
  `--json` never prompts. A step denied by the policy at apply time (rule added after the
  plan was written) is refused before anything runs, with a non-zero exit (1, 3 or 4).
- exit 0 / 1 / 4 / 5 as the issue says; an invalid plan or an unknown server is exit 2.
- `--dry-run` runs nothing: no marker appears and no `apply` audit row has an exit code (rows
  recording what would run are allowed); it accepts `--yes` and exits 0 for a good plan.
- `apply --json` gives the usual envelope with `"command": "apply"`; `plan show --json` too.
- audit rows have source `apply`; `vpsagent history --json` lists them.
- `plan show FILE` prints every step's command, its class (`read-only`, `change`,
  `unknown`, `destructive`) and today's decision (`allow`, `ask`, `deny`).
- `plan validate FILE` prints problems as `FILE:LINE:COL: message` (stdout or stderr),
  exit 2; exit 0 for a valid plan.
- `plan list --json` / `plan history FILE|HASH --json`: the plan's hash, the servers and
  their outcome appear somewhere in `data` (shape not assumed).

`ask --save-test FILE`: after the task, the model answers with the test plan as a ```yaml
block in a text reply (as `test generate` does). It is validated and run once against the
same servers; an invalid or failing plan gets one retry; after that an error, exit non-zero,
nothing written.

`ask --canary web1 -t web --yes "..."`: the model works on web1 only; the changing commands
that succeeded are applied to web2 and web3 through `apply` (audit source `apply`); read-only
and failed commands are not replayed.

Per-server state: all three servers are one sshd (one filesystem), so commands name their
marker files after the server's address, `$(echo $SSH_CONNECTION | cut -d" " -f3)`
(the gate rates `touch "D/x-$(…)"` a change and `test -e …` read-only). A `poison-<addr>`
file makes that server's verify check fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

# The shared fixtures, imported so this file also runs outside tests/ (e.g. from
# /tmp/accept-15); inside tests/ they are the same objects conftest.py provides.
from tests.conftest import cli, ctx, db_url, engine, home, keyring, run_vpsagent, settings  # noqa: F401
from tests.fakes.anthropic_api import FakeAnthropicAPI, anthropic_api, text, tool_use  # noqa: F401
from tests.sshd import SSHD, free_port, register_sshd, sshd, sshd_factory  # noqa: F401

PLAN_TOOL = "submit_plan"
SRV = '$(echo $SSH_CONNECTION | cut -d" " -f3)'
ADDR = {"web1": "127.0.0.1", "web2": "127.0.0.2", "web3": "127.0.0.3"}
WEB = ["web1", "web2", "web3"]
PROMPT = b"[y/N]"
WIDE = {"COLUMNS": "500"}  # text output is not wrapped in these tests


@pytest.fixture
def db_backend() -> str:
    """SQLite when run outside tests/ (conftest.py's hook parametrizes it inside)."""
    return "sqlite"


# --------------------------------------------------------------------------- plan builder


def step(servers: list[str], command: str | None = None, *, write: dict[str, str] | None = None,
         why: str = "acceptance", expect: str = "the change is made", verify: dict[str, Any] | None = None,
         undo: str | None = None) -> dict[str, Any]:
    s: dict[str, Any] = {"servers": list(servers)}
    if command is not None:
        s["command"] = command
    if write is not None:
        s["write"] = write
    s["why"] = why
    s["expect"] = expect
    s["verify"] = verify if verify is not None else {"run": "true"}
    if undo is not None:
        s["undo"] = undo
    return s


def plan_doc(steps: list[dict[str, Any]], *, selection: dict[str, Any] | None = None,
             request: str = "acceptance test plan") -> dict[str, Any]:
    return {
        "request": request,
        "model": "claude-test",
        "conversation": None,
        "selection": selection or {"servers": sorted({n for s in steps for n in s["servers"]})},
        "created": "2026-12-01T12:00:00Z",
        "steps": steps,
    }


def write_plan_file(path: Path, steps: list[dict[str, Any]], **kw: Any) -> Path:
    path.write_text(yaml.safe_dump(plan_doc(steps, **kw), sort_keys=False, width=10_000))
    return path


def touch(d: Path, name: str) -> str:
    """A change command making `d/name-<server address>`."""
    return f'touch "{d}/{name}-{SRV}"'


def untouch(d: Path, name: str) -> str:
    return f'rm -f "{d}/{name}-{SRV}"'


def check(d: Path, name: str) -> dict[str, Any]:
    """The verify check: the marker is there and this server is not poisoned."""
    return {"run": f'test -e "{d}/{name}-{SRV}" && test ! -e "{d}/poison-{SRV}"'}


def marker_step(d: Path, name: str, servers: list[str] = WEB) -> dict[str, Any]:
    return step(servers, touch(d, name), verify=check(d, name), undo=untouch(d, name),
                why=f"create {name}", expect=f"{name} exists")


def has(d: Path, name: str, server: str) -> bool:
    return (d / f"{name}-{ADDR[server]}").exists()


def poison(d: Path, server: str) -> None:
    (d / f"poison-{ADDR[server]}").write_text("")


def out(r: Any) -> str:
    return (r.stdout or "") + (r.stderr or "")


def entries(cli) -> list[dict[str, Any]]:  # noqa: F811
    r = cli("history", "--json", "--limit", "0")
    assert r.exit_code == 0, r.stderr
    return list(reversed(r.json()["data"]["entries"]))  # oldest first


def apply_rows(cli, server: str | None = None) -> list[dict[str, Any]]:  # noqa: F811
    return [e for e in entries(cli) if e["source"] == "apply" and (server is None or e["server"] == server)]


def ran(cli, server: str, command: str) -> list[dict[str, Any]]:  # noqa: F811
    """Apply's audit rows of `command` on `server` that really ran (not denied)."""
    return [e for e in apply_rows(cli, server) if e["command"] == command and e["status"] != "denied"]


def plan_hash(data: dict[str, Any]) -> str:
    h = data.get("hash") or data.get("plan_hash")
    assert isinstance(h, str) and re.fullmatch(r"(sha256:)?[0-9a-f]{12,64}", h), data
    return h.removeprefix("sha256:")


def write_policy(settings, doc: dict[str, Any]) -> None:  # noqa: F811
    settings.policy_file.parent.mkdir(parents=True, exist_ok=True)
    settings.policy_file.write_text(yaml.safe_dump(doc, sort_keys=False, width=10_000))


@pytest.fixture
def fleet(engine, keyring, sshd: SSHD) -> list[str]:  # noqa: F811
    """web1..web3 on 127.0.0.1..3 (the session sshd), tagged web."""
    return [register_sshd(engine, keyring, sshd, n, address=ADDR[n], tags=["web"]) for n in WEB]


@pytest.fixture
def d() -> Iterator[Path]:
    """A short state directory (short paths: command lines in text output stay on one line)."""
    p = Path(tempfile.mkdtemp(prefix="a15-", dir="/tmp"))
    try:
        yield p
    finally:
        shutil.rmtree(p, ignore_errors=True)


def apply_json(cli, path: Path, *args: str) -> tuple[Any, dict[str, Any]]:  # noqa: F811
    r = cli("apply", str(path), *args, "--json")
    doc = json.loads(r.stdout)
    assert doc["command"] == "apply" and doc["exit_code"] == r.exit_code, r.stdout
    return r, doc


# --------------------------------------------------------------------------- the planning model


def plan_tool_name(request: dict[str, Any]) -> str:
    names = [t.get("name", "") for t in request.get("tools") or []]
    if PLAN_TOOL in names:
        return PLAN_TOOL
    cands = [n for n in names if "plan" in n.lower()]
    assert len(cands) == 1, f"no single plan tool among the tools offered: {names}"
    return cands[0]


def script_planner(api: FakeAnthropicAPI, first: list[Any], steps: list[dict[str, Any]]) -> None:
    """The model: the `first` replies (investigation), then the plan through the plan tool."""
    queue = list(first)
    state = {"submitted": False}

    def handler(req: dict[str, Any]) -> Any:
        if queue:
            return queue.pop(0)
        if not state["submitted"]:
            state["submitted"] = True
            return tool_use(plan_tool_name(req), {"steps": steps}, id="toolu_plan")
        return text("The plan is written.")

    api.handler = handler


def result_for(api: FakeAnthropicAPI, tool_use_id: str) -> dict[str, Any]:
    for body in api.requests:
        for msg in body.get("messages", []):
            if msg.get("role") == "user" and not isinstance(msg.get("content"), str):
                for b in msg["content"]:
                    if b.get("type") == "tool_result" and b.get("tool_use_id") == tool_use_id:
                        return b
    raise AssertionError(f"no tool_result for {tool_use_id}")


def ask_plan(cli, anthropic_api, d: Path, plan_path: Path, *extra: str) -> Any:  # noqa: F811
    script_planner(anthropic_api, [tool_use("run_command", {"server": "web1", "command": f"ls -la {d}"},
                                            id="toolu_look")],
                   [marker_step(d, "s1"), marker_step(d, "s2")])
    return cli("ask", "--plan", str(plan_path), "-t", "web", *extra, "create the two markers")


# =========================================================================== ask --plan


def test_ask_plan_investigates_then_writes_the_plan(anthropic_api, cli, fleet, d, tmp_path):  # noqa: F811
    plan_path = tmp_path / "plan.yaml"
    r = ask_plan(cli, anthropic_api, d, plan_path)
    assert r.exit_code == 0, out(r)
    # the read-only investigation really ran and its output went back to the model
    res = result_for(anthropic_api, "toolu_look")
    assert not res.get("is_error"), res
    doc = yaml.safe_load(plan_path.read_text())
    assert doc["request"] == "create the two markers"
    assert doc["model"] == anthropic_api.requests[0]["model"]
    assert doc["conversation"] not in (None, "")
    assert "web" in json.dumps(doc["selection"])
    assert str(doc["created"]).startswith("20")
    cmds = [s.get("command") for s in doc["steps"]]
    assert cmds == [touch(d, "s1"), touch(d, "s2")]
    assert doc["steps"][0]["undo"] == untouch(d, "s1")
    assert doc["steps"][0]["verify"] == check(d, "s1")
    # a dedicated plan tool was offered, and the request reached the model
    assert plan_tool_name(anthropic_api.requests[0])
    assert "create the two markers" in json.dumps(anthropic_api.requests[0]["messages"])
    # nothing changed anywhere while planning
    assert sorted(p.name for p in d.iterdir()) == []
    assert apply_rows(cli) == []


def test_a_changing_command_while_planning_is_denied_even_with_yes(anthropic_api, cli, fleet, d, tmp_path):  # noqa: F811
    victim = d / "changed-while-planning"
    script_planner(anthropic_api,
                   [tool_use("run_command", {"server": "web1", "command": f"touch {victim}"}, id="toolu_bad")],
                   [marker_step(d, "s1")])
    plan_path = tmp_path / "plan.yaml"
    cli("ask", "--plan", str(plan_path), "-t", "web", "--yes", "create the marker")
    assert not victim.exists()
    res = result_for(anthropic_api, "toolu_bad")
    assert res.get("is_error") is True
    # the denial is in the audit log and nothing ran
    rows = [e for e in entries(cli) if e["command"] == f"touch {victim}"]
    assert rows and all(e["status"] == "denied" for e in rows)
    assert not any(has(d, "s1", n) for n in WEB)


def test_write_file_while_planning_changes_nothing(anthropic_api, cli, fleet, d, tmp_path):  # noqa: F811
    victim = d / "written-while-planning"
    script_planner(anthropic_api,
                   [tool_use("write_file", {"server": "web1", "path": str(victim), "content": "x\n"},
                             id="toolu_write")],
                   [marker_step(d, "s1")])
    cli("ask", "--plan", str(tmp_path / "plan.yaml"), "-t", "web", "--yes", "write it")
    assert not victim.exists()
    assert result_for(anthropic_api, "toolu_write").get("is_error") is True


def test_a_plan_from_ask_applies_to_the_fleet(anthropic_api, cli, fleet, d, tmp_path):  # noqa: F811
    plan_path = tmp_path / "plan.yaml"
    assert ask_plan(cli, anthropic_api, d, plan_path).exit_code == 0
    n_requests = len(anthropic_api.requests)
    assert cli("plan", "validate", str(plan_path)).exit_code == 0
    r, doc = apply_json(cli, plan_path, "--yes", "--canary", "1", "--serial", "1")
    assert r.exit_code == 0 and doc["ok"], r.stdout
    assert all(has(d, s, n) for s in ("s1", "s2") for n in WEB)
    assert len(anthropic_api.requests) == n_requests  # apply asked the model nothing


# =========================================================================== plan validate / show


def test_plan_validate_accepts_a_good_plan(cli, fleet, d, tmp_path):  # noqa: F811
    p = write_plan_file(tmp_path / "p.yaml", [marker_step(d, "s1")])
    r = cli("plan", "validate", str(p))
    assert r.exit_code == 0, out(r)
    assert not any(d.iterdir())


BAD_KEY_PLAN = """\
request: bad plan
model: claude-test
conversation: null
selection: {servers: [web1]}
created: "2026-12-01T12:00:00Z"
steps:
  - servers: [web1]
    comand: touch /tmp/never
    why: typo
    expect: nothing
    verify: {run: "true"}
"""


def test_plan_validate_reports_file_line_col_and_exit_2(cli, fleet, tmp_path):  # noqa: F811
    p = tmp_path / "bad.yaml"
    p.write_text(BAD_KEY_PLAN)
    r = cli("plan", "validate", str(p))
    assert r.exit_code == 2
    assert f"{p}:8:5:" in out(r)
    assert "comand" in out(r)
    assert "Traceback" not in out(r)


def test_plan_validate_checks_verify_with_the_test_plan_syntax(cli, fleet, tmp_path):  # noqa: F811
    p = tmp_path / "bad-verify.yaml"
    p.write_text(BAD_KEY_PLAN.replace("comand:", "command:").replace(
        'verify: {run: "true"}', "verify:\n      run: \"true\"\n      expected: {exit: 0}"))
    r = cli("plan", "validate", str(p))
    assert r.exit_code == 2
    assert f"{p}:13:7:" in out(r) and "expected" in out(r)


@pytest.mark.parametrize(("body", "lines"), [
    ("request: r\n  bad: indent\n", "2"),  # YAML syntax error
    ("request: r\nsteps:\n  - servers: [nosuch]\n    command: touch /tmp/x\n    verify: {run: 'true'}\n", "3"),
    ("request: r\nsteps:\n  - servers: [web1]\n    why: no command and no write\n    verify: {run: 'true'}\n", "3"),
    ("request: r\nsteps:\n  - servers: [web1]\n    command: touch /tmp/x\n"
     "    write: {path: /tmp/y, content: z}\n    verify: {run: 'true'}\n", "345"),
    ("request: !!python/object/apply:os.system ['touch /tmp/pwned-acc15']\nsteps: []\n", "1"),
], ids=["yaml-syntax", "unknown-server", "no-command", "command-and-write", "python-tag"])
def test_plan_validate_rejects_bad_plans(cli, fleet, tmp_path, body, lines):  # noqa: F811
    p = tmp_path / "bad.yaml"
    p.write_text(body)
    r = cli("plan", "validate", str(p))
    assert r.exit_code == 2, out(r)
    assert re.search(rf"{re.escape(str(p))}:[{lines}]:\d+: ", out(r)), out(r)
    assert "Traceback" not in out(r)
    assert not Path("/tmp/pwned-acc15").exists()
    missing = cli("plan", "validate", str(tmp_path / "nope.yaml"))
    assert missing.exit_code == 2 and "error:" in missing.stderr and "Traceback" not in out(missing)


def test_plan_show_gives_each_step_its_class_and_todays_decision(cli, fleet, d, tmp_path):  # noqa: F811
    victim = d / "victim"
    victim.mkdir()
    p = write_plan_file(tmp_path / "p.yaml", [
        step(["web1"], f"ls -la {d}"),
        marker_step(d, "s1", ["web1"]),
        step(["web1"], "frobnicate --now"),
        step(["web1"], f"rm -rf {victim}"),
    ])
    r = cli("plan", "show", str(p), env=WIDE)
    assert r.exit_code == 0, out(r)
    lines = r.stdout.splitlines()

    def line_of(cmd: str) -> str:
        hit = [ln for ln in lines if cmd in ln]
        assert hit, f"{cmd!r} not shown:\n{r.stdout}"
        return hit[0]

    assert "read-only" in line_of(f"ls -la {d}") and "allow" in line_of(f"ls -la {d}")
    assert "change" in line_of(touch(d, "s1")) and "ask" in line_of(touch(d, "s1"))
    assert "unknown" in line_of("frobnicate --now")
    assert "destructive" in line_of(f"rm -rf {victim}") and "deny" in line_of(f"rm -rf {victim}")
    assert victim.exists() and not has(d, "s1", "web1")  # showing runs nothing


def test_plan_show_follows_the_policy_of_today(cli, settings, fleet, d, tmp_path):  # noqa: F811
    p = write_plan_file(tmp_path / "p.yaml", [marker_step(d, "s1", ["web1"])])
    write_policy(settings, {"deny": ["touch *"]})
    r = cli("plan", "show", str(p), env=WIDE)
    assert r.exit_code == 0, out(r)
    (line,) = [ln for ln in r.stdout.splitlines() if touch(d, "s1") in ln]
    assert "deny" in line


def test_plan_show_json_reports_the_hash(cli, fleet, d, tmp_path):  # noqa: F811
    p = write_plan_file(tmp_path / "p.yaml", [marker_step(d, "s1")])
    a = cli("plan", "show", str(p), "--json")
    assert a.exit_code == 0, out(a)
    h1 = plan_hash(a.json()["data"])
    p.write_text(p.read_text().replace("create s1", "create s1 (reworded)"))
    h2 = plan_hash(cli("plan", "show", str(p), "--json").json()["data"])
    assert h1 != h2  # the hash is over the content


# =========================================================================== apply


def test_apply_on_three_servers_all_succeed(cli, fleet, d, tmp_path):  # noqa: F811
    p = write_plan_file(tmp_path / "p.yaml", [marker_step(d, "s1"), marker_step(d, "s2")])
    r, doc = apply_json(cli, p, "--yes", "--canary", "1", "--serial", "1")
    assert r.exit_code == 0 and doc["ok"] is True, r.stdout
    assert all(has(d, s, n) for s in ("s1", "s2") for n in WEB)
    for n in WEB:
        assert len(ran(cli, n, touch(d, "s1"))) == 1 and len(ran(cli, n, touch(d, "s2"))) == 1
        assert ran(cli, n, untouch(d, "s1")) == []  # nothing undone
    text_doc = json.dumps(doc["data"])
    assert all(n in text_doc for n in WEB)


def test_second_server_verify_fails_stops_undoes_it_and_leaves_the_third(cli, fleet, d, tmp_path):  # noqa: F811
    poison(d, "web2")
    p = write_plan_file(tmp_path / "p.yaml", [marker_step(d, "s1"), marker_step(d, "s2")])
    r = cli("apply", str(p), "--yes", "--canary", "1", "--serial", "1")
    assert r.exit_code == 1, out(r)
    # the canary stays applied
    assert has(d, "s1", "web1") and has(d, "s2", "web1")
    # web2: its check failed at step 1 -> step 1 undone, step 2 never ran
    assert not has(d, "s1", "web2") and not has(d, "s2", "web2")
    assert len(ran(cli, "web2", untouch(d, "s1"))) == 1
    assert ran(cli, "web2", touch(d, "s2")) == []
    # web3 untouched: no file, no audit row
    assert not has(d, "s1", "web3") and not has(d, "s2", "web3")
    assert apply_rows(cli, "web3") == []
    assert "undo" in out(r).lower() or "undid" in out(r).lower() or "undone" in out(r).lower()


def test_undo_runs_in_reverse_order_on_the_failing_server(cli, fleet, d, tmp_path):  # noqa: F811
    # step 1's check ignores the poison, step 2's check fails on the poisoned web2
    p = write_plan_file(tmp_path / "p.yaml", [
        step(WEB, touch(d, "s1"), verify={"run": f'test -e "{d}/s1-{SRV}"'}, undo=untouch(d, "s1")),
        step(WEB, touch(d, "s2"), verify={"run": f'test ! -e "{d}/poison-{SRV}"'}, undo=untouch(d, "s2")),
    ])
    poison(d, "web2")
    r = cli("apply", str(p), "--yes", "--canary", "1", "--serial", "1")
    assert r.exit_code == 1, out(r)
    u2 = ran(cli, "web2", untouch(d, "s2"))
    u1 = ran(cli, "web2", untouch(d, "s1"))
    assert len(u1) == 1 and len(u2) == 1
    assert u2[0]["id"] < u1[0]["id"]  # step 2 undone before step 1
    assert not has(d, "s1", "web2") and not has(d, "s2", "web2")
    assert has(d, "s1", "web1") and has(d, "s2", "web1")
    assert apply_rows(cli, "web3") == []


def test_a_failing_command_undoes_only_the_steps_before_it(cli, fleet, d, tmp_path):  # noqa: F811
    broken = f'mkdir "{d}/missing-parent/x-{SRV}"'
    p = write_plan_file(tmp_path / "p.yaml", [
        marker_step(d, "s1", ["web1"]),
        step(["web1"], broken, undo=f'rmdir "{d}/missing-parent/x-{SRV}"'),
    ])
    r = cli("apply", str(p), "--yes")
    assert r.exit_code == 1, out(r)
    assert not has(d, "s1", "web1")
    assert len(ran(cli, "web1", untouch(d, "s1"))) == 1
    assert ran(cli, "web1", f'rmdir "{d}/missing-parent/x-{SRV}"') == []


def test_a_failing_canary_stops_before_the_others(cli, fleet, d, tmp_path):  # noqa: F811
    poison(d, "web1")
    p = write_plan_file(tmp_path / "p.yaml", [marker_step(d, "s1")])
    r = cli("apply", str(p), "--yes", "--canary", "1", "--serial", "2")
    assert r.exit_code == 1, out(r)
    assert not any(has(d, "s1", n) for n in WEB)
    assert apply_rows(cli, "web2") == [] and apply_rows(cli, "web3") == []


def test_max_fail_lets_apply_carry_on_past_a_failed_server(cli, fleet, d, tmp_path):  # noqa: F811
    poison(d, "web2")
    p = write_plan_file(tmp_path / "p.yaml", [marker_step(d, "s1")])
    r = cli("apply", str(p), "--yes", "--canary", "1", "--serial", "1", "--max-fail", "1")
    assert r.exit_code == 1, out(r)
    assert has(d, "s1", "web1") and not has(d, "s1", "web2") and has(d, "s1", "web3")


def test_a_bad_max_fail_is_a_usage_error(cli, fleet, d, tmp_path):  # noqa: F811
    p = write_plan_file(tmp_path / "p.yaml", [marker_step(d, "s1")])
    for good in ("1", "50%"):  # both spellings are accepted
        ok = cli("apply", str(p), "--yes", "--dry-run", "--max-fail", good)
        assert ok.exit_code == 0, (good, out(ok))
    for value in ("abc", "150%", "-1"):
        r = cli("apply", str(p), "--yes", "--max-fail", value)
        assert r.exit_code == 2, (value, out(r))
        assert "error" in r.stderr.lower() and "Traceback" not in out(r)
    assert not any(has(d, "s1", n) for n in WEB)


def test_a_plan_edited_after_ask_wrote_it_is_refused(anthropic_api, cli, fleet, d, tmp_path):  # noqa: F811
    plan_path = tmp_path / "plan.yaml"
    assert ask_plan(cli, anthropic_api, d, plan_path).exit_code == 0
    assert cli("plan", "show", str(plan_path)).exit_code == 0  # shown to the reviewer
    edited = plan_path.read_text().replace(f"{d}/s1-", f"{d}/sneaky-")
    assert edited != plan_path.read_text()
    plan_path.write_text(edited)
    r = cli("apply", str(plan_path), "--yes")
    assert r.exit_code != 0, out(r)
    assert "hash" in out(r).lower()
    assert not any(has(d, s, n) for s in ("s1", "s2", "sneaky") for n in WEB)
    assert [e for e in apply_rows(cli) if e.get("exit_code") is not None] == []


def test_a_policy_tightened_after_planning_refuses_the_step(cli, settings, fleet, d, tmp_path):  # noqa: F811
    p = write_plan_file(tmp_path / "p.yaml", [marker_step(d, "s1"), marker_step(d, "s2")])
    assert cli("plan", "validate", str(p)).exit_code == 0
    write_policy(settings, {"deny": [f'touch "{d}/s2-*'], "allow": []})
    r = cli("apply", str(p), "--yes")
    assert r.exit_code in (1, 3, 4), out(r)
    assert "deny" in out(r).lower() or "denied" in out(r).lower()
    assert not any(has(d, s, n) for s in ("s1", "s2") for n in WEB)


def test_dry_run_executes_nothing(cli, fleet, d, tmp_path):  # noqa: F811
    p = write_plan_file(tmp_path / "p.yaml", [marker_step(d, "s1"), marker_step(d, "s2")])
    r = cli("apply", str(p), "--yes", "--dry-run", env=WIDE)
    assert r.exit_code == 0, out(r)
    assert touch(d, "s1") in out(r)  # it says what would run
    assert not any(d.iterdir())
    assert [e for e in apply_rows(cli) if e.get("exit_code") is not None] == []  # nothing executed


def test_yes_does_not_cover_an_unknown_step(cli, fleet, d, tmp_path):  # noqa: F811
    p = write_plan_file(tmp_path / "p.yaml", [marker_step(d, "s1"), step(WEB, "frobnicate --now")])
    r = cli("apply", str(p), "--yes")
    assert r.exit_code == 4, out(r)
    assert "unknown" in out(r)
    assert not any(has(d, "s1", n) for n in WEB)  # approval is for the whole plan: nothing ran


def test_yes_does_not_cover_a_destructive_step(cli, fleet, d, tmp_path):  # noqa: F811
    victim = d / "victim"
    victim.mkdir()
    (victim / "data").write_text("keep me")
    p = write_plan_file(tmp_path / "p.yaml", [marker_step(d, "s1", ["web1"]), step(["web1"], f"rm -rf {victim}")])
    r = cli("apply", str(p), "--yes")
    assert r.exit_code == 4, out(r)
    assert "destructive" in out(r)
    assert (victim / "data").read_text() == "keep me" and not has(d, "s1", "web1")


def test_an_allow_rule_lets_unknown_and_destructive_steps_run(cli, settings, fleet, d, tmp_path):  # noqa: F811
    victim = d / "victim"
    victim.mkdir()
    made = d / "made-by-python"
    unknown_cmd = f"python3 -c 'import pathlib; pathlib.Path(\"{made}\").touch()'"
    write_policy(settings, {"allow": [unknown_cmd, f"rm -rf {victim}"]})
    p = write_plan_file(tmp_path / "p.yaml", [step(["web1"], unknown_cmd), step(["web1"], f"rm -rf {victim}")])
    r = cli("apply", str(p), "--yes")
    assert r.exit_code == 0, out(r)
    assert made.exists() and not victim.exists()


def test_without_a_terminal_and_without_yes_exit_4(cli, fleet, d, tmp_path):  # noqa: F811
    p = write_plan_file(tmp_path / "p.yaml", [marker_step(d, "s1")])
    r = cli("apply", str(p))
    assert r.exit_code == 4, out(r)
    assert "error:" in r.stderr and "--yes" in r.stderr
    # --json never prompts either, and says why in the envelope
    j, doc = apply_json(cli, p)
    assert j.exit_code == 4 and doc["ok"] is False and doc["errors"], j.stdout
    assert not any(d.iterdir())


@pytest.mark.parametrize(("answer", "code"), [(b"y\n", 0), (b"n\n", 4)], ids=["yes", "no"])
def test_on_a_terminal_approval_is_asked_once_for_the_whole_plan(cli, fleet, d, tmp_path, answer, code):  # noqa: F811
    import pty

    from tests.agent._helpers import read_until

    p = write_plan_file(tmp_path / "p.yaml", [marker_step(d, "s1"), marker_step(d, "s2")])
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "vpsagent", "apply", str(p), "--canary", "1", "--serial", "1"],
                            stdin=slave, stdout=slave, stderr=slave, env={**os.environ, **WIDE}, start_new_session=True)
    os.close(slave)
    try:
        shown = read_until(master, PROMPT)
        assert touch(d, "s1").encode() in shown and touch(d, "s2").encode() in shown
        assert b"change" in shown
        assert not any(d.iterdir())  # nothing before the answer
        os.write(master, answer)
        rest = read_until(master, None)
        assert proc.wait(timeout=120) == code, (shown + rest).decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert (shown + rest).count(PROMPT) == 1  # once for 2 steps x 3 servers
    assert all(has(d, s, n) is (code == 0) for s in ("s1", "s2") for n in WEB)


def test_an_unreachable_server_is_exit_5(ctx, cli, fleet, sshd: SSHD, d, tmp_path):  # noqa: F811
    from vpsagent.services.servers import ServerSpec, add_server

    add_server(ctx, ServerSpec(name="gone", host="127.0.0.1", port=free_port(["127.0.0.1"]),
                               user=sshd.user, key_path=sshd.client_key_path, tags=["web"]))
    p = write_plan_file(tmp_path / "p.yaml", [marker_step(d, "s1", ["gone"])])
    r = cli("apply", str(p), "--yes")
    assert r.exit_code == 5, out(r)
    assert "gone" in r.stderr and "Traceback" not in out(r)


def test_an_unknown_server_is_exit_2_and_nothing_runs(cli, fleet, d, tmp_path):  # noqa: F811
    p = write_plan_file(tmp_path / "p.yaml", [marker_step(d, "s1", ["web1"]), marker_step(d, "s2", ["nosuch"])],
                        selection={"servers": ["web1", "nosuch"]})
    r = cli("apply", str(p), "--yes")
    assert r.exit_code == 2, out(r)
    assert "nosuch" in out(r) and not any(d.iterdir())


def test_an_invalid_plan_is_exit_2_with_file_line_col(cli, fleet, tmp_path):  # noqa: F811
    p = tmp_path / "bad.yaml"
    p.write_text(BAD_KEY_PLAN)
    r = cli("apply", str(p), "--yes")
    assert r.exit_code == 2
    assert f"{p}:8:5:" in out(r)
    assert apply_rows(cli) == []


def test_each_step_runs_only_on_the_servers_it_names(cli, fleet, d, tmp_path):  # noqa: F811
    p = write_plan_file(tmp_path / "p.yaml", [marker_step(d, "s1"), marker_step(d, "only1", ["web1"])],
                        selection={"tags": ["web"]})
    r = cli("apply", str(p), "--yes")
    assert r.exit_code == 0, out(r)
    assert all(has(d, "s1", n) for n in WEB)
    assert has(d, "only1", "web1") and not has(d, "only1", "web2") and not has(d, "only1", "web3")


def test_a_write_step_writes_its_content(cli, fleet, d, tmp_path):  # noqa: F811
    target = d / "app.conf"
    content = "listen 8080\n# écrit par apply\n"
    p = write_plan_file(tmp_path / "p.yaml", [
        step(["web1"], write={"path": str(target), "content": content},
             verify={"file": {"path": str(target), "exists": True, "contains": "listen 8080"}},
             undo=f"rm -f {target}"),
    ])
    r = cli("apply", str(p), "--yes")
    assert r.exit_code == 0, out(r)
    assert target.read_text() == content


def test_audit_rows_have_source_apply_and_the_plan_hash(cli, fleet, d, tmp_path):  # noqa: F811
    p = write_plan_file(tmp_path / "p.yaml", [marker_step(d, "s1")])
    r, doc = apply_json(cli, p, "--yes")
    assert r.exit_code == 0, r.stdout
    h = plan_hash(doc["data"])
    assert h[:12] == plan_hash(cli("plan", "show", str(p), "--json").json()["data"])[:12]
    for n in WEB:
        (row,) = ran(cli, n, touch(d, "s1"))
        assert row["exit_code"] == 0
        assert h[:12] in json.dumps(row), row
    # `--source apply` filters them
    s = cli("history", "--source", "apply", "--json", "--limit", "0")
    assert s.exit_code == 0 and s.json()["data"]["entries"]
    assert {e["source"] for e in s.json()["data"]["entries"]} == {"apply"}


def test_apply_makes_no_model_call(anthropic_api, cli, fleet, d, tmp_path):  # noqa: F811
    p = write_plan_file(tmp_path / "p.yaml", [marker_step(d, "s1")])
    r = cli("apply", str(p), "--yes")
    assert r.exit_code == 0, out(r)
    assert anthropic_api.requests == []
    assert all(has(d, "s1", n) for n in WEB)


def test_apply_works_with_the_ai_service_unreachable(run_vpsagent, fleet, d, tmp_path):  # noqa: F811
    p = write_plan_file(tmp_path / "p.yaml", [marker_step(d, "s1")])
    dead = f"http://127.0.0.1:{free_port(['127.0.0.1'])}"
    r = run_vpsagent("apply", str(p), "--yes",
                     env={"ANTHROPIC_BASE_URL": dead, "ANTHROPIC_API_KEY": "sk-ant-dead-0000000000"})
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert all(has(d, "s1", n) for n in WEB)


# =========================================================================== plan list / history


def test_plan_list_and_history_record_who_when_hash_and_outcomes(cli, fleet, d, tmp_path):  # noqa: F811
    poison(d, "web3")
    p = write_plan_file(tmp_path / "p.yaml", [marker_step(d, "s1")])
    r, doc = apply_json(cli, p, "--yes", "--max-fail", "1")
    assert r.exit_code == 1
    h = plan_hash(doc["data"])
    lst = cli("plan", "list", "--json")
    assert lst.exit_code == 0, out(lst)
    assert h[:12] in json.dumps(lst.json()["data"])
    for key in (str(p), h):
        hist = cli("plan", "history", key, "--json")
        assert hist.exit_code == 0, out(hist)
        data = json.dumps(hist.json()["data"])
        assert all(n in data for n in WEB), data
        assert h[:12] in data
    txt = cli("plan", "history", str(p))
    assert txt.exit_code == 0 and "web3" in txt.stdout
    unknown = cli("plan", "history", "0" * 64)
    assert unknown.exit_code == 2 and "error:" in unknown.stderr


# =========================================================================== ask --save-test


def _test_plan_yaml(path: Path) -> str:
    return f"name: marker is there\nservers: [web1]\nsteps:\n  - file: {{path: {path}, exists: true}}\n"


def test_save_test_writes_a_plan_that_passes_test_run(anthropic_api, cli, fleet, d, tmp_path):  # noqa: F811
    marker = d / "installed"
    saved = tmp_path / "regression.yaml"
    anthropic_api.push(
        tool_use("run_command", {"server": "web1", "command": f"touch {marker}"}),
        text("The marker is in place."),
        text("Here is the test:\n```yaml\n" + _test_plan_yaml(marker) + "```\n"),
    )
    anthropic_api.always(text("```yaml\n" + _test_plan_yaml(marker) + "```"))
    r = cli("ask", "-s", "web1", "--yes", "--save-test", str(saved), "install the marker")
    assert r.exit_code == 0, out(r)
    assert marker.exists() and saved.exists()
    assert cli("test", "validate", str(saved)).exit_code == 0
    t = cli("test", "run", str(saved))
    assert t.exit_code == 0, t.stdout


def test_save_test_retries_once_then_fails_without_writing(anthropic_api, cli, fleet, d, tmp_path):  # noqa: F811
    marker = d / "installed"
    wrong = d / "never-there"
    saved = tmp_path / "regression.yaml"
    anthropic_api.push(
        tool_use("run_command", {"server": "web1", "command": f"touch {marker}"}),
        text("Done."),
    )
    anthropic_api.always(text("```yaml\n" + _test_plan_yaml(wrong) + "```"))  # fails every time
    r = cli("ask", "-s", "web1", "--yes", "--save-test", str(saved), "install the marker")
    assert r.exit_code != 0, out(r)
    assert not saved.exists()
    assert "error:" in r.stderr and "test" in r.stderr.lower()
    assert marker.exists()  # the task itself was done
    # exactly one retry: two requests after the task's own two
    assert len(anthropic_api.requests) == 4


def test_save_test_gets_an_invalid_plan_fixed_in_one_retry(anthropic_api, cli, fleet, d, tmp_path):  # noqa: F811
    marker = d / "installed"
    saved = tmp_path / "regression.yaml"
    anthropic_api.push(
        tool_use("run_command", {"server": "web1", "command": f"touch {marker}"}),
        text("Done."),
        text("```yaml\nname: x\nsteps:\n  - run: true\n    expected: {exit: 0}\n```"),
        text("```yaml\n" + _test_plan_yaml(marker) + "```"),
    )
    r = cli("ask", "-s", "web1", "--yes", "--save-test", str(saved), "install the marker")
    assert r.exit_code == 0, out(r)
    assert saved.read_text() == _test_plan_yaml(marker)
    assert "expected" in json.dumps(anthropic_api.requests[3]["messages"][-1])  # the problem went back


# =========================================================================== ask --canary


def test_canary_changes_are_applied_to_the_rest_of_the_tag(anthropic_api, cli, fleet, d, tmp_path):  # noqa: F811
    anthropic_api.push(
        tool_use("run_command", {"server": "web1", "command": f"ls -la {d}"}, id="toolu_c0"),
        tool_use("run_command", {"server": "web1", "command": touch(d, "c1")}, id="toolu_c1"),
        tool_use("run_command", {"server": "web1", "command": f'mkdir "{d}/no-parent/x"'}, id="toolu_c2"),
        text("Marker created on the canary."),
    )
    anthropic_api.always(text("Done."))
    r = cli("ask", "--canary", "web1", "-t", "web", "--yes", "create the marker")
    assert r.exit_code in (0, 1), out(r)  # (the failed mkdir may count as a failure of the task)
    assert all(has(d, "c1", n) for n in WEB)
    for n in ("web2", "web3"):
        assert len(ran(cli, n, touch(d, "c1"))) == 1  # through apply, identical command
        # read-only and failed commands are not replayed
        assert ran(cli, n, f"ls -la {d}") == []
        assert ran(cli, n, f'mkdir "{d}/no-parent/x"') == []
    # the model only ever worked on the canary
    for body in anthropic_api.requests:
        for msg in body.get("messages", []):
            if msg.get("role") == "assistant" and not isinstance(msg.get("content"), str):
                for b in msg["content"]:
                    if b.get("type") == "tool_use":
                        assert b["input"].get("server") in (None, "web1")


def test_canary_without_approval_changes_nothing_anywhere(anthropic_api, cli, fleet, d, tmp_path):  # noqa: F811
    anthropic_api.push(
        tool_use("run_command", {"server": "web1", "command": touch(d, "c1")}, id="toolu_c1"),
        text("I could not make the change."),
    )
    anthropic_api.always(text("Done."))
    r = cli("ask", "--canary", "web1", "-t", "web", "create the marker")  # no TTY, no --yes
    assert r.exit_code == 4, out(r)
    assert not any(has(d, "c1", n) for n in WEB)
    assert apply_rows(cli, "web2") == [] and apply_rows(cli, "web3") == []
