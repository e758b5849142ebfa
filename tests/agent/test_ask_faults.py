"""Faults and endings: API errors and the SDK's retries, broken streams, every stop reason,
the turn and cost budgets — each ends cleanly with the conversation saved."""

from __future__ import annotations

import json
import socket
import threading

import pytest

from tests.agent._helpers import conversation, conversations, history, result_text, tool_result
from tests.fakes.anthropic_api import (
    Broken,
    Reply,
    StreamError,
    overloaded,
    rate_limited,
    server_error,
    sse_events,
    text,
    tool_use,
)


def test_529_twice_then_success(anthropic_api, cli, ssh_server):
    anthropic_api.push(overloaded(), overloaded(), text("Fine after all."))
    r = cli("ask", "-s", ssh_server, "hello")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.strip() == "Fine after all."
    assert len(anthropic_api.requests) == 3
    # the SDK retried the same request: same conversation, same prompt
    assert anthropic_api.requests[0]["messages"] == anthropic_api.requests[2]["messages"]
    assert [h.get("x-stainless-retry-count") for h in anthropic_api.headers] == ["0", "1", "2"]


def test_429_and_500_are_retried_too(anthropic_api, cli, ssh_server):
    anthropic_api.push(rate_limited(), server_error(), text("ok"))
    r = cli("ask", "-s", ssh_server, "hello")
    assert r.exit_code == 0, r.stderr
    assert len(anthropic_api.requests) == 3


def test_api_always_failing_exits_6_saves_and_continue_resumes(anthropic_api, cli, engine, ssh_server):
    anthropic_api.always(overloaded())
    r = cli("ask", "-s", ssh_server, "why is the disk full?")
    assert r.exit_code == 6
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "529" in lines[0]
    assert "Traceback" not in r.stderr
    assert len(anthropic_api.requests) == 3  # the first try and the SDK's two retries
    (conv,) = conversations(engine)
    assert conv.status == "ai_error"
    _, msgs = conversation(engine, conv.id)
    assert [m.role for m in msgs] == ["user"]
    assert "why is the disk full?" in json.dumps(msgs[0].content)

    anthropic_api.always(None)
    anthropic_api.push(text("Logs fill /var."))
    r2 = cli("ask", "--json", "--continue", "and what should I delete?")
    assert r2.exit_code == 0, r2.stdout + r2.stderr
    assert r2.json()["data"]["conversation_id"] == conv.id
    assert r2.json()["data"]["servers"] == [ssh_server]
    sent = json.dumps(anthropic_api.last["messages"])
    assert "why is the disk full?" in sent and "and what should I delete?" in sent
    # one valid user turn (no two user messages in a row)
    roles = [m["role"] for m in anthropic_api.last["messages"]]
    assert roles == ["user"]
    conv2, msgs2 = conversation(engine, conv.id)
    assert conv2.status == "open"
    assert msgs2[-1].role == "assistant" and msgs2[-1].content == [{"type": "text", "text": "Logs fill /var."}]


def test_api_failure_with_json_names_the_conversation(anthropic_api, cli, engine, ssh_server):
    anthropic_api.always(server_error())
    r = cli("ask", "--json", "-s", ssh_server, "hello")
    assert r.exit_code == 6
    doc = r.json()
    assert doc["ok"] is False and doc["exit_code"] == 6
    assert doc["errors"] and "500" in doc["errors"][0]["message"]
    (conv,) = conversations(engine)
    assert doc["data"]["conversation_id"] == conv.id


@pytest.mark.parametrize("mode", ["cut", "eof"])
def test_a_broken_stream_never_executes_its_partial_tool_call(anthropic_api, cli, engine, ssh_server, tmp_path, mode):
    target = tmp_path / "from-a-broken-stream"
    partial = tool_use("run_command", {"server": ssh_server, "command": f"touch {target}"}, id="toolu_broken")
    anthropic_api.push(Broken(partial, after=6, mode=mode), text("Recovered without running anything."))
    r = cli("ask", "--yes", "-s", ssh_server, "make the file")
    assert r.exit_code == 0, r.stderr
    assert not target.exists()
    assert history(engine) == []
    assert "asking again" in r.stderr
    assert len(anthropic_api.requests) == 2
    # the broken response is not in the history sent again, nor stored
    assert "toolu_broken" not in anthropic_api.all_bodies()
    (conv,) = conversations(engine)
    _, msgs = conversation(engine, conv.id)
    assert "toolu_broken" not in json.dumps([m.content for m in msgs])
    assert r.stdout.strip().endswith("Recovered without running anything.")


def test_a_stream_missing_only_message_stop_is_still_not_executed(anthropic_api, cli, engine, ssh_server, tmp_path):
    target = tmp_path / "no-message-stop"
    reply = tool_use("run_command", {"server": ssh_server, "command": f"touch {target}"}, id="toolu_nostop")
    n = len(list(sse_events(reply, "m")))
    anthropic_api.push(Broken(reply, after=n - 1, mode="eof"), text("ok"))
    r = cli("ask", "--yes", "-s", ssh_server, "make the file")
    assert r.exit_code == 0, r.stderr
    assert not target.exists()
    assert history(engine) == []


def test_a_stream_that_always_breaks_exits_6_without_executing(anthropic_api, cli, engine, ssh_server, tmp_path):
    target = tmp_path / "never"
    anthropic_api.always(Broken(tool_use("run_command", {"server": ssh_server, "command": f"touch {target}"}), after=5))
    r = cli("ask", "--yes", "-s", ssh_server, "make the file")
    assert r.exit_code == 6
    assert not target.exists()
    assert history(engine) == []
    assert "--continue" in r.stderr


def test_an_error_event_mid_stream_is_retried_and_nothing_partial_runs(anthropic_api, cli, engine, ssh_server,
                                                                        tmp_path):
    target = tmp_path / "mid-stream-error"
    anthropic_api.push(
        StreamError(tool_use("run_command", {"server": ssh_server, "command": f"touch {target}"}), after=5),
        text("done"),
    )
    r = cli("ask", "--yes", "-s", ssh_server, "make the file")
    assert r.exit_code == 0, r.stderr
    assert not target.exists()
    assert "overloaded" in r.stderr.lower()
    assert len(anthropic_api.requests) == 2


# --------------------------------------------------------------------------- stop reasons


@pytest.mark.parametrize(("stop", "code", "notice"), [
    ("end_turn", 0, None),
    ("stop_sequence", 0, None),
    ("max_tokens", 0, "output limit"),
    ("refusal", 1, "declined"),
])
def test_final_stop_reasons_end_cleanly(anthropic_api, cli, engine, ssh_server, stop, code, notice):
    anthropic_api.push(text(f"An answer that ended with {stop}", stop_reason=stop))
    r = cli("ask", "--json", "-s", ssh_server, "hello")
    assert r.exit_code == code, r.stdout + r.stderr
    doc = r.json()
    assert doc["exit_code"] == code
    assert doc["data"]["stop_reason"] == stop
    assert doc["data"]["answer"] == f"An answer that ended with {stop}"
    if notice:
        assert any(notice in n for n in doc["data"]["notices"])
    assert len(anthropic_api.requests) == 1
    (conv,) = conversations(engine)
    _, msgs = conversation(engine, conv.id)
    assert [m.role for m in msgs] == ["user", "assistant"]
    assert "Traceback" not in r.stderr


def test_tool_use_cut_by_max_tokens_is_not_executed(anthropic_api, cli, engine, ssh_server, tmp_path):
    target = tmp_path / "cut-call"
    reply = tool_use("run_command", {"server": ssh_server, "command": f"touch {target}"}, text="I will create it.",
                     stop_reason="max_tokens")
    anthropic_api.push(reply)
    r = cli("ask", "--yes", "-s", ssh_server, "create it")
    assert r.exit_code == 0, r.stderr
    assert not target.exists()
    assert history(engine) == []
    assert "output limit" in r.stderr
    (conv,) = conversations(engine)
    _, msgs = conversation(engine, conv.id)
    assert "tool_use" not in json.dumps(msgs[-1].content)  # no unanswered call left in the transcript


def test_pause_turn_is_continued(anthropic_api, cli, ssh_server):
    anthropic_api.push(text("Still working on it...", stop_reason="pause_turn"), text("Finished."))
    r = cli("ask", "--json", "-s", ssh_server, "long task")
    assert r.exit_code == 0, r.stdout + r.stderr
    assert len(anthropic_api.requests) == 2
    last = anthropic_api.requests[1]["messages"][-1]
    assert last["role"] == "assistant" and "Still working on it..." in json.dumps(last["content"])
    assert r.json()["data"]["answer"] == "Finished."
    assert r.json()["data"]["stop_reason"] == "end_turn"


def test_tool_use_stop_with_tool_calls_runs_them_and_continues(anthropic_api, cli, ssh_server):
    anthropic_api.push(tool_use("run_command", {"server": ssh_server, "command": "echo step-one"}, id="toolu_st"),
                       text("two"))
    r = cli("ask", "--json", "-s", ssh_server, "go")
    assert r.exit_code == 0
    assert "step-one" in result_text(tool_result(anthropic_api, "toolu_st"))
    assert r.json()["data"]["turns"] == 2


def test_tool_use_stop_without_tool_calls_ends_cleanly(anthropic_api, cli, ssh_server):
    anthropic_api.push(Reply(content=[{"type": "text", "text": "odd"}], stop_reason="tool_use"))
    r = cli("ask", "-s", ssh_server, "go")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.strip() == "odd"
    assert len(anthropic_api.requests) == 1


def test_an_empty_response_ends_cleanly(anthropic_api, cli, engine, ssh_server):
    anthropic_api.push(Reply(content=[], stop_reason="end_turn"))
    r = cli("ask", "-s", ssh_server, "go")
    assert r.exit_code == 0, r.stderr
    (conv,) = conversations(engine)
    _, msgs = conversation(engine, conv.id)
    assert msgs[-1].role == "assistant" and msgs[-1].content  # never an empty assistant turn


# --------------------------------------------------------------------------- budgets


def _always_a_tool(ssh_server):
    n = iter(range(1000))
    return lambda req: tool_use("run_command", {"server": ssh_server, "command": f"echo turn-{next(n)}"})


def test_max_turns_stops_with_exit_8_and_the_transcript_saved(anthropic_api, cli, engine, ssh_server):
    anthropic_api.handler = _always_a_tool(ssh_server)
    r = cli("ask", "--json", "--max-turns", "3", "-s", ssh_server, "loop forever")
    assert r.exit_code == 8, r.stdout + r.stderr
    doc = r.json()
    assert doc["exit_code"] == 8 and doc["ok"] is False
    assert "--max-turns" in doc["errors"][0]["message"]
    assert len(anthropic_api.requests) == 3
    conv_id = doc["data"]["conversation_id"]
    conv, msgs = conversation(engine, conv_id)
    assert conv.status == "budget_exceeded"
    # every tool_use in the saved transcript has its tool_result
    assert [m.role for m in msgs] == ["user"] + ["assistant", "user"] * 3
    assert [h.command for h in history(engine, conversation_id=conv_id)] == ["echo turn-0", "echo turn-1", "echo turn-2"]


def test_max_turns_without_json_prints_one_error_line(anthropic_api, cli, ssh_server):
    anthropic_api.handler = _always_a_tool(ssh_server)
    r = cli("ask", "--max-turns", "1", "-s", ssh_server, "loop")
    assert r.exit_code == 8
    (line,) = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert "--max-turns 1" in line
    assert "Traceback" not in r.stderr


def test_max_cost_stops_with_exit_8_before_running_more_tools(anthropic_api, cli, engine, ssh_server, tmp_path):
    target = tmp_path / "too-expensive"
    anthropic_api.push(tool_use("run_command", {"server": ssh_server, "command": f"touch {target}"}, id="toolu_cost",
                                usage={"input_tokens": 1_000_000, "output_tokens": 1000}))
    r = cli("ask", "--json", "--yes", "--max-cost", "0.5", "-s", ssh_server, "expensive")
    assert r.exit_code == 8, r.stdout + r.stderr
    assert not target.exists()
    res = tool_result_from_db(engine, r.json()["data"]["conversation_id"], "toolu_cost")
    assert res["is_error"] is True and "budget" in res["content"]
    conv, _ = conversation(engine, r.json()["data"]["conversation_id"])
    assert conv.status == "budget_exceeded" and conv.cost_usd > 0.5
    assert "--max-cost" in r.json()["errors"][0]["message"]


def tool_result_from_db(engine, conv_id: int, tool_use_id: str) -> dict:
    _, msgs = conversation(engine, conv_id)
    for m in msgs:
        for b in m.content:
            if b.get("type") == "tool_result" and b.get("tool_use_id") == tool_use_id:
                return b
    raise AssertionError(f"no stored tool_result for {tool_use_id}")


def test_bad_budget_values_are_usage_errors(anthropic_api, cli, ssh_server):
    assert cli("ask", "--max-turns", "0", "-s", ssh_server, "x").exit_code == 2
    assert cli("ask", "--max-cost", "0", "-s", ssh_server, "x").exit_code == 2
    assert cli("ask", "--max-cost", "abc", "-s", ssh_server, "x").exit_code == 2
    assert anthropic_api.requests == []


def test_continue_after_the_turn_budget_sends_a_valid_history(anthropic_api, cli, engine, ssh_server):
    anthropic_api.handler = _always_a_tool(ssh_server)
    r = cli("ask", "--json", "--max-turns", "2", "-s", ssh_server, "loop")
    assert r.exit_code == 8
    conv_id = r.json()["data"]["conversation_id"]
    anthropic_api.handler = None
    anthropic_api.push(text("Summary of the two turns."))
    r2 = cli("ask", "--json", "--continue", "summarise what you found")
    assert r2.exit_code == 0, r2.stdout + r2.stderr
    assert r2.json()["data"]["conversation_id"] == conv_id
    sent = anthropic_api.last["messages"]
    roles = [m["role"] for m in sent]
    assert roles == ["user", "assistant", "user", "assistant", "user"]
    # the last user turn carries the pending tool results first, then the new prompt
    last = sent[-1]["content"]
    assert last[0]["type"] == "tool_result" and last[-1]["text"] == "summarise what you found"
    conv, _ = conversation(engine, conv_id)
    assert conv.status == "open"


def _silent_listener() -> tuple[socket.socket, list[socket.socket]]:
    """A TCP endpoint that accepts connections and never says a word (a silent proxy)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    return srv, held


def test_a_silent_ai_service_ends_with_exit_6_and_the_conversation_saved(anthropic_api, cli, engine, ssh_server,
                                                                         monkeypatch):
    srv, held = _silent_listener()
    try:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", f"http://127.0.0.1:{srv.getsockname()[1]}")
        # small bounds so the test is quick; the defaults are 5 s to connect and 60 s between events
        monkeypatch.setenv("VPSAGENT_AI_READ_TIMEOUT", "300ms")
        monkeypatch.setenv("VPSAGENT_AI_CONNECT_TIMEOUT", "300ms")
        r = cli("ask", "--json", "-s", ssh_server, "is anyone there?")
    finally:
        srv.close()
        for conn in held:
            conn.close()
    assert r.exit_code == 6, r.stdout + r.stderr
    doc = r.json()
    assert doc["errors"] and "timed out" in doc["errors"][0]["message"]
    assert len(held) == 3  # the first try and the SDK's two retries, each cut by the read timeout
    (conv,) = conversations(engine)
    assert conv.status == "ai_error" and doc["data"]["conversation_id"] == conv.id
    _, msgs = conversation(engine, conv.id)
    assert "is anyone there?" in json.dumps(msgs[0].content)


def test_the_ai_timeouts_are_validated_settings(cli, monkeypatch):
    monkeypatch.setenv("VPSAGENT_AI_READ_TIMEOUT", "inf")
    r = cli("ask", "-s", "x", "hello")
    assert r.exit_code == 2
    assert "VPSAGENT_AI_READ_TIMEOUT" in r.stderr and "Traceback" not in r.stderr


def test_a_black_holed_ai_service_is_bounded_by_the_connect_timeout(anthropic_api, cli, engine, ssh_server,
                                                                    monkeypatch):
    """Connecting never completes (SYNs dropped): a listener that never accepts, its backlog
    filled first, is what a black-holed address looks like from here."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    fillers = []
    for _ in range(4):  # fill the accept queue; later SYNs are dropped, connect() hangs
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(srv.getsockname())
        fillers.append(c)
    try:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", f"http://127.0.0.1:{srv.getsockname()[1]}")
        monkeypatch.setenv("VPSAGENT_AI_CONNECT_TIMEOUT", "300ms")  # the read timeout stays 60 s
        r = cli("ask", "--json", "-s", ssh_server, "anyone?")
    finally:
        for c in fillers:
            c.close()
        srv.close()
    assert r.exit_code == 6, r.stdout + r.stderr
    assert "timed out" in r.json()["errors"][0]["message"]
    (conv,) = conversations(engine)
    assert conv.status == "ai_error"
