"""`ask --plan`: the scripted Messages API through the real SDK, commands on the real sshd."""

from __future__ import annotations

import json

import yaml

from tests.agent._helpers import history, tool_result
from tests.fakes.anthropic_api import text, tool_use


def test_model_investigates_then_submits_a_plan(anthropic_api, cli, three, engine, tmp_path) -> None:
    out = tmp_path / "upgrade.yaml"
    marker = tmp_path / "web1.mark"
    anthropic_api.push(
        tool_use("run_command", {"server": "web1", "command": "uname -s"}, id="toolu_look"),
        tool_use("submit_plan", {"steps": [{
            "name": "mark web1", "servers": ["web1"], "command": f"touch {marker}",
            "why": "the request asks for a mark", "expect": f"{marker} exists",
            "verify": [{"run": f"test -f {marker}"}], "undo": f"rm -f {marker}",
        }]}, id="toolu_plan"),
        text("The plan marks web1."),
    )
    r = cli("ask", "--plan", str(out), "-t", "web", "mark web1")
    assert r.exit_code == 0, r.stderr
    assert "Linux" in json.dumps(tool_result(anthropic_api, "toolu_look"))
    assert not tool_result(anthropic_api, "toolu_plan").get("is_error")
    doc = yaml.safe_load(out.read_text())
    assert doc["request"] == "mark web1" and doc["selection"] == {"tags": ["web"]}
    assert isinstance(doc["conversation"], int) and doc["model"]
    assert doc["steps"][0]["command"] == f"touch {marker}" and doc["steps"][0]["undo"] == f"rm -f {marker}"
    assert "mark web1" in r.stdout and "change" in r.stdout  # the review: step and class
    assert not marker.exists()  # nothing ran while planning
    # the submit_plan tool was offered, and only the investigation ran on a server
    assert "submit_plan" in [t["name"] for t in anthropic_api.requests[0]["tools"]]
    assert [row.command for row in history(engine, source="ask")] == ["uname -s"]
    # the plan written is the one reviewed: apply takes it as it is
    a = cli("apply", str(out), "--yes", "--json")
    assert a.exit_code == 0, a.stdout + a.stderr
    assert marker.exists()
    assert cli("plan", "list", "--json").json()["data"]["plans"][0]["origin"] in ("ask", "apply")


def test_changing_command_while_planning_is_denied(anthropic_api, cli, three, engine, tmp_path) -> None:
    out = tmp_path / "p.yaml"
    victim = tmp_path / "victim"
    anthropic_api.push(
        tool_use("run_command", {"server": "web1", "command": f"touch {victim}"}, id="toolu_touch"),
        tool_use("write_file", {"server": "web1", "path": str(victim), "content": "x"}, id="toolu_write"),
        tool_use("submit_plan", {"steps": [{"command": f"touch {victim}", "why": "asked", "expect": "exists"}]}),
        text("done"),
    )
    r = cli("ask", "--plan", str(out), "-s", "web1", "touch it", "--yes")  # --yes approves nothing here
    assert r.exit_code == 0, r.stderr
    assert "--yes approves nothing while planning" in r.stderr
    assert not victim.exists()
    for tid in ("toolu_touch", "toolu_write"):
        res = tool_result(anthropic_api, tid)
        assert res.get("is_error") and "read-only" in json.dumps(res)
    denied = history(engine, source="ask")
    assert denied and all(row.status == "denied" for row in denied)
    assert out.exists()


def test_invalid_plan_goes_back_to_the_model(anthropic_api, cli, three, tmp_path) -> None:
    out = tmp_path / "p.yaml"
    anthropic_api.push(
        tool_use("submit_plan", {"steps": [{"command": "true", "why": "x", "expect": "y",
                                            "verify": [{"run": "true", "bogus": 1}]}]}, id="toolu_bad"),
        tool_use("submit_plan", {"steps": [{"command": "true", "why": "x", "expect": "y",
                                            "verify": [{"run": "true"}]}]}, id="toolu_good"),
        text("ok"),
    )
    r = cli("ask", "--plan", str(out), "-s", "web1", "noop")
    assert r.exit_code == 0, r.stderr
    bad = tool_result(anthropic_api, "toolu_bad")
    assert bad.get("is_error") and "unknown key 'bogus'" in json.dumps(bad)
    assert yaml.safe_load(out.read_text())["steps"][0]["verify"] == [{"run": "true"}]


def test_no_plan_submitted_is_an_error_and_writes_nothing(anthropic_api, cli, three, tmp_path) -> None:
    out = tmp_path / "p.yaml"
    anthropic_api.push(text("I would rather not."))
    r = cli("ask", "--plan", str(out), "-s", "web1", "noop")
    assert r.exit_code == 1
    assert "did not submit a valid plan" in r.stderr
    assert not out.exists()


def test_canary_commands_become_a_plan_with_the_models_checks(anthropic_api, cli, three, engine, tmp_path) -> None:
    mark = f'touch "{tmp_path}/c-$(echo $SSH_CONNECTION | cut -d" " -f3)"'
    check = f'test -e "{tmp_path}/c-$(echo $SSH_CONNECTION | cut -d" " -f3)"'
    anthropic_api.push(
        tool_use("run_command", {"server": "web1", "command": mark}, id="toolu_mark"),
        text("Marked the canary."),
        tool_use("submit_checks", {"checks": [{"step": 1, "verify": [{"run": check}], "undo": "true"}]},
                 id="toolu_checks"),
        text("Checks given."),
    )
    r = cli("ask", "--canary", "web1", "-t", "web", "--yes", "--json", "mark them")
    assert r.exit_code == 0, r.stdout + r.stderr
    data = r.json()["data"]
    assert not tool_result(anthropic_api, "toolu_checks").get("is_error")
    plan = yaml.safe_load(open(data["plan"]).read())
    assert plan["selection"] == {"servers": ["web2", "web3"]}
    assert plan["steps"][0]["command"] == mark and plan["steps"][0]["verify"] == [{"run": check}]
    assert [s["outcome"] for s in data["apply"]["servers"]] == ["applied", "applied"]
    assert sorted(p.name for p in tmp_path.glob("c-*")) == ["c-127.0.0.1", "c-127.0.0.2", "c-127.0.0.3"]
    rows = history(engine, source="apply")
    assert {row.server for row in rows} == {"web2", "web3"}
    assert all(f"sha256:{data['hash']}" in (row.decision_reason or "") for row in rows)


def test_save_test_failures_go_back_to_the_model_redacted(anthropic_api, cli, three, tmp_path) -> None:
    creds = tmp_path / "creds"
    creds.write_text("password=hunter2-secret\n")
    leaky = f"name: leaky\nservers: [web1]\nsteps:\n  - run: cat {creds}\n    expect: {{stdout: {{equals: nope}}}}\n"
    anthropic_api.push(text("Nothing to do."))
    anthropic_api.always(text("```yaml\n" + leaky + "```"))
    saved = tmp_path / "t.yaml"
    r = cli("ask", "-s", "web1", "--save-test", str(saved), "check the creds file")
    assert r.exit_code == 1 and not saved.exists()
    retry = json.dumps(anthropic_api.requests[-1]["messages"][-1])
    assert "run once and failed" in retry
    assert "hunter2" not in anthropic_api.all_strings()


def test_an_unwritable_output_is_refused_before_any_model_call(anthropic_api, cli, three, tmp_path) -> None:
    for flag in ("--plan", "--save-test"):
        r = cli("ask", flag, str(tmp_path / "no-such-dir" / "p.yaml"), "-s", "web1", "anything")
        assert r.exit_code == 2 and "cannot write" in r.stderr
    assert anthropic_api.requests == []
