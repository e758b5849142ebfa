"""`test generate` and `test run --explain` with the real anthropic SDK against the fake
Messages API (tests/fakes/anthropic_api.py): read-only commands on the server, the plan
validated before it is written, diagnoses attached to the reports.
"""

from __future__ import annotations

import json
from pathlib import Path

from lxml import etree

from tests.fakes.anthropic_api import overloaded, text, tool_use

XSD = Path(__file__).with_name("junit.xsd")

GOOD_PLAN = """\
name: generated
description: the kernel and the shell
servers: [local]
steps:
  - name: kernel is Linux
    run: uname -s
    expect: {stdout: Linux}
  - file: {path: /bin/sh, exists: true}
"""

BAD_PLAN = """\
name: generated
steps:
  - run: uname -s
    expected: {stdout: Linux}
"""


def _first_user_text(request: dict) -> str:
    content = request["messages"][0]["content"]
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content if b.get("type") == "text")


def test_generate_writes_a_validated_plan(anthropic_api, cli, tmp_path):
    out = tmp_path / "gen.yaml"
    anthropic_api.push(
        tool_use("run_command", {"server": "local", "command": "uname -s"}),
        text("I looked at the server.\n\n```yaml\n" + GOOD_PLAN + "```\n"),
    )
    r = cli("test", "generate", "-s", "local", "the kernel is Linux and there is a shell", "-o", str(out))
    assert r.exit_code == 0, r.stderr
    assert out.read_text() == GOOD_PLAN
    assert f"wrote {out}: 'generated', 2 steps" in r.stderr
    first = _first_user_text(anthropic_api.requests[0])
    assert "the kernel is Linux and there is a shell" in first
    assert "servers: [local]" in first  # the format guide names the server
    (result,) = anthropic_api.tool_results(anthropic_api.requests[1])
    assert "Linux" in anthropic_api.result_text(result)  # the command really ran, read-only
    # the plan it wrote runs and passes
    r = cli("test", "run", str(out))
    assert r.exit_code == 0, r.stdout


def test_generate_to_stdout_with_json(anthropic_api, cli):
    anthropic_api.push(text("```yaml\n" + GOOD_PLAN + "```"))
    r = cli("test", "generate", "-s", "local", "shell", "--json")
    assert r.exit_code == 0
    data = r.json()["data"]
    assert (data["name"], data["steps"], data["attempts"], data["path"]) == ("generated", 2, 1, None)
    assert data["plan"] == GOOD_PLAN
    assert isinstance(data["conversation_id"], int)
    anthropic_api.push(text("```yaml\n" + GOOD_PLAN + "```"))
    r = cli("test", "generate", "-s", "local", "shell")
    assert r.exit_code == 0 and r.stdout == GOOD_PLAN  # without -o the plan is the output


def test_generate_retries_once_with_the_problems(anthropic_api, cli, tmp_path):
    out = tmp_path / "gen.yaml"
    anthropic_api.push(text("```yaml\n" + BAD_PLAN + "```"), text("Fixed:\n```yaml\n" + GOOD_PLAN + "```"))
    r = cli("test", "generate", "-s", "local", "kernel", "-o", str(out), "--json")
    assert r.exit_code == 0, r.stdout
    assert r.json()["data"]["attempts"] == 2
    assert out.read_text() == GOOD_PLAN
    retry = anthropic_api.requests[1]
    last = retry["messages"][-1]["content"]
    last = last if isinstance(last, str) else "".join(b.get("text", "") for b in last)
    assert "That plan is invalid" in last
    assert f"{out}:4:5: unknown key 'expected' in step 1" in last
    # the retry continues the same conversation: the first answer is in it
    assert any("expected: {stdout: Linux}" in json.dumps(m) for m in retry["messages"])


def test_generate_gives_up_after_one_retry(anthropic_api, cli, tmp_path):
    out = tmp_path / "gen.yaml"
    anthropic_api.push(text("```yaml\n" + BAD_PLAN + "```"), text("```yaml\n" + BAD_PLAN + "```"))
    r = cli("test", "generate", "-s", "local", "kernel", "-o", str(out))
    assert r.exit_code == 1
    assert "the generated plan is still invalid after one retry (1 problem); nothing was written" in r.stderr
    assert not out.exists()
    assert len(anthropic_api.requests) == 2


def test_generate_is_read_only(anthropic_api, cli, tmp_path):
    marker = tmp_path / "written-by-the-model"
    anthropic_api.push(
        tool_use("run_command", {"server": "local", "command": f"touch {marker}"}),
        text("```yaml\n" + GOOD_PLAN + "```"),
    )
    r = cli("test", "generate", "-s", "local", "anything")
    assert r.exit_code == 0
    assert not marker.exists()
    (result,) = anthropic_api.tool_results(anthropic_api.requests[1])
    assert result.get("is_error") is True


def test_generate_unknown_server_asks_nothing(anthropic_api, cli):
    r = cli("test", "generate", "-s", "nosuch", "anything")
    assert r.exit_code == 2
    assert "error: unknown server 'nosuch'" in r.stderr
    assert anthropic_api.requests == []


def test_generate_refuses_to_overwrite(anthropic_api, cli, tmp_path):
    out = tmp_path / "exists.yaml"
    out.write_text("mine\n")
    r = cli("test", "generate", "-s", "local", "anything", "-o", str(out))
    assert r.exit_code == 2 and "exists" in r.stderr
    assert out.read_text() == "mine\n" and anthropic_api.requests == []


def test_explain_attaches_a_diagnosis(anthropic_api, cli, engine, write_plan, tmp_path):
    from sqlmodel import Session, select

    from vpsagent.db.models import TestStep

    missing = tmp_path / "VERSION"
    path = write_plan(f"name: explained\nservers: [local]\nsteps:\n  - run: echo fine\n"
                      f"  - name: release file\n    run: cat {missing}\n")
    anthropic_api.push(
        tool_use("run_command", {"server": "local", "command": f"ls -l {tmp_path}"}),
        text("The release file is missing: the deploy did not write it.\nFix: write VERSION during deploy."),
    )
    junit, js = tmp_path / "r.xml", tmp_path / "r.json"
    r = cli("test", "run", path, "--explain", "--report", f"junit:{junit}", "--report", f"json:{js}")
    assert r.exit_code == 1  # the diagnosis never changes the result
    steps = json.loads(js.read_text())["plans"][0]["servers"][0]["steps"]
    assert steps[0]["explanation"] is None  # only failed steps are diagnosed
    assert steps[1]["explanation"].startswith("The release file is missing")
    prompt = _first_user_text(anthropic_api.requests[0])
    assert "Step 2: release file (kind run)" in prompt
    assert f"Command: cat {missing}" in prompt
    assert "No such file or directory" in prompt  # the step's stderr went along
    assert "read-only" in prompt
    doc = etree.parse(str(junit))
    etree.XMLSchema(etree.parse(str(XSD))).assertValid(doc)
    out = doc.find(".//testcase[@name='002 release file']/system-out").text
    assert out.startswith("AI diagnosis (read-only):\nThe release file is missing")
    assert "explanation: The release file is missing" in r.stdout
    with Session(engine) as s:
        rows = {st.seq: st.explanation for st in s.exec(select(TestStep)).all()}
    assert rows[1] is None and rows[2].startswith("The release file is missing")


def test_explain_when_the_ai_fails(anthropic_api, cli, write_plan, tmp_path):
    anthropic_api.always(overloaded())
    path = write_plan("name: e\nservers: [local]\nsteps:\n  - run: 'false'\n")
    js = tmp_path / "r.json"
    r = cli("test", "run", path, "--explain", "--report", f"json:{js}")
    assert r.exit_code == 1
    (step,) = json.loads(js.read_text())["plans"][0]["servers"][0]["steps"]
    assert step["status"] == "failed"
    assert step["explanation"].startswith("diagnosis unavailable: ")


def test_no_explain_no_request(anthropic_api, cli, write_plan):
    path = write_plan("name: e\nservers: [local]\nsteps:\n  - run: 'false'\n")
    assert cli("test", "run", path).exit_code == 1
    assert anthropic_api.requests == []
