"""`vpsagent ask`: streaming, prompt caching, model choice, --json, stdin — with the real
anthropic SDK against the fake Messages API and commands on the real sshd."""

from __future__ import annotations

import json

import pytest

from tests.agent._helpers import conversation, history, tool_result
from tests.fakes.anthropic_api import Reply, text, tool_use


def test_answer_streams_to_stdout_and_tool_activity_to_stderr(anthropic_api, cli, engine, ssh_server):
    anthropic_api.push(
        tool_use("run_command", {"server": ssh_server, "command": "echo disk-report-42; uname -s"}, id="toolu_a1",
                 text="Let me look."),
        text("The server runs Linux and reported disk-report-42."),
    )
    r = cli("ask", "-s", ssh_server, "what OS is this?")
    assert r.exit_code == 0, r.stderr
    # the answer (every text block, as streamed) is the only thing on stdout
    assert "The server runs Linux and reported disk-report-42." in r.stdout
    assert f"{ssh_server} $ echo disk-report-42" not in r.stdout
    assert "exit 0" not in r.stdout
    # the tool call, its output and its exit code go to stderr
    assert f"{ssh_server} $ echo disk-report-42; uname -s" in r.stderr
    assert "disk-report-42" in r.stderr and "Linux" in r.stderr
    assert "exit 0" in r.stderr
    # the model really received the command's output from the sshd
    res = tool_result(anthropic_api, "toolu_a1")
    assert "disk-report-42" in json.dumps(res) and "Linux" in json.dumps(res)
    assert not res.get("is_error")
    # every request streamed (the SDK's messages.stream)
    assert all(b.get("stream") is True for b in anthropic_api.requests)
    rows = history(engine, source="ask")
    assert [r.command for r in rows] == ["echo disk-report-42; uname -s"]
    assert rows[0].exit_code == 0 and rows[0].server == ssh_server


def test_text_arrives_in_several_deltas_and_is_reassembled(anthropic_api, cli, ssh_server):
    long = "word " * 200
    anthropic_api.push(Reply(content=[{"type": "text", "text": long}], chunk=3))
    r = cli("ask", "-s", ssh_server, "say many words")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.strip() == long.strip()


def test_prompt_caching_on_system_prompt_and_tools(anthropic_api, cli, ssh_server):
    anthropic_api.push(text("ok"))
    r = cli("ask", "-s", ssh_server, "hello")
    assert r.exit_code == 0, r.stderr
    body = anthropic_api.last
    system = body["system"]
    assert isinstance(system, list) and system
    assert system[0].get("cache_control") == {"type": "ephemeral"}
    assert "vpsagent" in system[0]["text"]
    # the servers in scope are named in the system prompt
    assert ssh_server in json.dumps(system)
    tools = body["tools"]
    assert {t["name"] for t in tools} == {"run_command", "read_file", "write_file", "list_servers"}
    assert tools[-1].get("cache_control") == {"type": "ephemeral"}
    run = next(t for t in tools if t["name"] == "run_command")
    assert set(run["input_schema"]["required"]) == {"server", "command"}
    assert "timeout_s" in run["input_schema"]["properties"]


def test_default_model_is_a_current_sonnet_the_sdk_does_not_deprecate(anthropic_api, cli, ssh_server):
    from anthropic._data import DEPRECATED_MODELS

    from vpsagent.agent.client import default_model

    anthropic_api.push(text("ok"))
    r = cli("ask", "-s", ssh_server, "hello")
    assert r.exit_code == 0, r.stderr
    model = anthropic_api.last["model"]
    assert model.startswith("claude-sonnet-")
    assert model not in DEPRECATED_MODELS
    assert default_model() not in DEPRECATED_MODELS
    assert "deprecated" not in r.stderr


def test_model_from_flag_and_from_environment(anthropic_api, cli, ssh_server):
    anthropic_api.push(text("one"), text("two"))
    assert cli("ask", "-s", ssh_server, "--model", "claude-opus-5-5", "hi").exit_code == 0
    assert anthropic_api.last["model"] == "claude-opus-5-5"
    assert cli("ask", "-s", ssh_server, "hi", env={"VPSAGENT_MODEL": "claude-haiku-5-5"}).exit_code == 0
    assert anthropic_api.last["model"] == "claude-haiku-5-5"


def test_deprecated_model_gets_a_warning(anthropic_api, cli, ssh_server):
    from anthropic._data import DEPRECATED_MODELS

    if not DEPRECATED_MODELS:
        pytest.skip("the installed SDK marks no model deprecated")
    old = sorted(DEPRECATED_MODELS)[0]  # whichever the installed SDK retires, not a name fixed today
    anthropic_api.push(text("ok"))
    r = cli("ask", "-s", ssh_server, "--model", old, "hi")
    assert r.exit_code == 0, r.stderr
    assert "deprecated" in r.stderr and old in r.stderr


def test_json_envelope_matches_the_database(anthropic_api, cli, engine, ssh_server):
    anthropic_api.push(
        tool_use("run_command", {"server": ssh_server, "command": "echo hello-json"}, id="toolu_j1",
                 usage={"input_tokens": 1000, "output_tokens": 50, "cache_creation_input_tokens": 2000}),
        tool_use("run_command", {"server": ssh_server, "command": "exit 3"}, id="toolu_j2",
                 usage={"input_tokens": 10, "output_tokens": 40, "cache_read_input_tokens": 3000}),
        text("Done: hello-json.", usage={"input_tokens": 20, "output_tokens": 30, "cache_read_input_tokens": 3100}),
    )
    r = cli("ask", "--json", "-s", ssh_server, "say hello")
    assert r.exit_code == 0, r.stderr
    doc = r.json()
    assert doc["vpsagent"] == 1 and doc["ok"] is True and doc["exit_code"] == 0
    assert doc["command"].endswith("ask")
    data = doc["data"]
    assert data["answer"] == "Done: hello-json."
    calls = data["tool_calls"]
    assert [(c["server"], c["command"], c["decision"], c["exit_code"]) for c in calls] == [
        (ssh_server, "echo hello-json", "allow", 0),
        (ssh_server, "exit 3", "allow", 3),
    ]
    usage = data["usage"]
    assert usage["input_tokens"] == 1030 and usage["output_tokens"] == 120
    assert usage["cache_write_tokens"] == 2000 and usage["cache_read_tokens"] == 6100
    # Sonnet prices: 3 $/M in, 15 $/M out, cache write 1.25x, cache read 0.1x
    expected = (1030 * 3 + 120 * 15 + 2000 * 3 * 1.25 + 6100 * 3 * 0.1) / 1e6
    assert abs(data["cost_usd"] - expected) < 1e-6
    conv, msgs = conversation(engine, data["conversation_id"])
    assert (conv.input_tokens, conv.output_tokens, conv.cache_read_tokens, conv.cache_write_tokens) == (1030, 120, 6100, 2000)
    assert abs(conv.cost_usd - data["cost_usd"]) < 1e-6
    assert conv.servers == [ssh_server]
    # user, assistant(tool_use), user(tool_result), assistant(tool_use), user(tool_result), assistant(text)
    assert [m.role for m in msgs] == ["user", "assistant", "user", "assistant", "user", "assistant"]
    assert msgs[-1].content == [{"type": "text", "text": "Done: hello-json."}]
    rows = history(engine, conversation_id=data["conversation_id"])
    assert [(x.command, x.exit_code, x.decision) for x in rows] == [("echo hello-json", 0, "allow"), ("exit 3", 3, "allow")]
    # --json: stdout is exactly one JSON document, the streamed text is not printed around it
    assert r.stdout.strip().startswith("{") and r.stdout.strip().endswith("}")


def test_prompt_from_stdin_with_dash(anthropic_api, cli, engine, ssh_server):
    anthropic_api.push(text("read it"))
    r = cli("ask", "-s", ssh_server, "-", input="why is the sky blue over the datacenter?\n")
    assert r.exit_code == 0, r.stderr
    user = anthropic_api.last["messages"][0]
    texts = [b["text"] for b in user["content"]]
    assert any("why is the sky blue over the datacenter?" in t for t in texts)
    assert not any("<stdin>" in t for t in texts)  # the prompt itself, not context


def test_piped_stdin_is_attached_as_context(anthropic_api, cli, ssh_server):
    logs = "\n".join(f"2026-11-26 nginx[12]: upstream timed out line {i}" for i in range(50))
    anthropic_api.push(text("nginx upstream timeouts"))
    r = cli("ask", "-s", ssh_server, "why does nginx fail?", input=logs)
    assert r.exit_code == 0, r.stderr
    texts = [b["text"] for b in anthropic_api.last["messages"][0]["content"]]
    assert texts[-1] == "why does nginx fail?"
    ctx = "\n".join(texts[:-1])
    assert "<stdin>" in ctx and "upstream timed out line 49" in ctx


def test_empty_prompt_is_a_usage_error(anthropic_api, cli, ssh_server):
    r = cli("ask", "-s", ssh_server, "-", input="   \n")
    assert r.exit_code == 2
    assert "error:" in r.stderr.lower() and "give a prompt" in r.stderr
    assert anthropic_api.requests == []


def test_no_servers_is_a_usage_error_not_a_request(anthropic_api, cli):
    r = cli("ask", "hello")
    assert r.exit_code == 2
    assert "-s NAME" in r.stderr
    assert anthropic_api.requests == []


def test_missing_api_key_is_one_clear_line(anthropic_api, cli, ssh_server, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    r = cli("ask", "-s", ssh_server, "hello")
    assert r.exit_code != 0
    assert "ANTHROPIC_API_KEY" in r.stderr
    assert "Traceback" not in r.stderr
    assert anthropic_api.requests == []


def test_subprocess_with_piped_logs_and_no_tty(anthropic_api, run_vpsagent, engine, ssh_server):
    anthropic_api.push(
        tool_use("run_command", {"server": ssh_server, "command": "echo checked-$((6*7))"}, id="toolu_s1"),
        text("The log shows a crash; the server answered checked-42."),
    )
    p = run_vpsagent("ask", "-s", ssh_server, "why does the app crash?",
                     input="Nov 26 app[1]: segfault at 0000\nNov 26 app[1]: core dumped\n", timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    assert p.stdout.decode().strip() == "The log shows a crash; the server answered checked-42."
    err = p.stderr.decode()
    assert "echo checked-$((6*7))" in err and "Traceback" not in err
    assert "\x1b[" not in err  # no TTY: plain text, no colour codes
    first = anthropic_api.requests[0]["messages"][0]["content"]
    assert "segfault at 0000" in first[0]["text"]
    assert "checked-42" in json.dumps(tool_result(anthropic_api, "toolu_s1"))
    assert [r.command for r in history(engine, source="ask")] == ["echo checked-$((6*7))"]


def test_verbose_shows_tokens_and_cost_on_stderr(anthropic_api, cli, ssh_server):
    anthropic_api.push(text("ok", usage={"input_tokens": 1234, "output_tokens": 56, "cache_read_input_tokens": 789,
                                         "cache_creation_input_tokens": 10}))
    r = cli("ask", "-v", "-s", ssh_server, "hello")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.strip() == "ok"
    assert "1234 in" in r.stderr and "56 out" in r.stderr and "789 cache read" in r.stderr
    assert "10 cache write" in r.stderr and "$" in r.stderr


def test_reading_a_missing_file_is_an_error_result_shown_to_both(anthropic_api, cli, ssh_server, tmp_path):
    missing = tmp_path / "no-such-file.conf"
    anthropic_api.push(tool_use("read_file", {"server": ssh_server, "path": str(missing)}, id="toolu_miss"),
                       text("That file does not exist."))
    r = cli("ask", "-s", ssh_server, "read the config")
    assert r.exit_code == 0, r.stderr
    res = tool_result(anthropic_api, "toolu_miss")
    assert res.get("is_error") is True and f"cannot read {missing}" in json.dumps(res)
    assert f"cannot read {missing}" in r.stderr
