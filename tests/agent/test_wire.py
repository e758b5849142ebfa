"""Every request the agent sends must be one the real API accepts: at most 4 cache
breakpoints, no empty text blocks, alternating roles starting with the user, every tool_use
answered by a tool_result at the start of the next user turn."""

from __future__ import annotations

import json
from typing import Any

from tests.fakes.anthropic_api import Broken, Reply, text, tool_use, tool_uses


def _cache_points(body: dict[str, Any]) -> int:
    return json.dumps(body).count('"cache_control"')


def check_request(body: dict[str, Any]) -> None:
    assert _cache_points(body) <= 4, f"{_cache_points(body)} cache_control blocks (the API allows 4)"
    raw = body["messages"]
    assert raw and raw[0]["role"] == "user"
    # the API combines consecutive turns of one role (a continued pause_turn is sent that way)
    msgs: list[dict[str, Any]] = []
    for m in raw:
        if msgs and msgs[-1]["role"] == m["role"]:
            msgs[-1] = {"role": m["role"], "content": msgs[-1]["content"] + m["content"]}
        else:
            msgs.append(m)
    roles = [m["role"] for m in msgs]
    assert roles[-1] == "user" or body.get("_pause_ok"), roles  # a request continues from the user
    for i, m in enumerate(msgs):
        content = m["content"]
        assert isinstance(content, list) and content, f"message {i} is empty"
        for b in content:
            if b.get("type") == "text":
                assert b["text"].strip(), f"empty text block in message {i}"
        ids = [b["id"] for b in content if b.get("type") == "tool_use"]
        if ids:
            nxt = msgs[i + 1]["content"]
            n = len([b for b in nxt if b.get("type") == "tool_result"])
            assert [b.get("tool_use_id") for b in nxt[:n]] == ids, "tool_results must answer every tool_use, first"


def test_a_long_session_sends_only_valid_requests(anthropic_api, cli, ssh_server):
    anthropic_api.push(
        Reply(content=[{"type": "text", "text": ""},
                       {"type": "tool_use", "id": "toolu_w1", "name": "run_command",
                        "input": {"server": ssh_server, "command": "echo one"}}], stop_reason="tool_use"),
        Broken(tool_use("run_command", {"server": ssh_server, "command": "echo never"}), after=5),
        tool_uses([("run_command", {"server": ssh_server, "command": "echo two"}, "toolu_w2"),
                   ("list_servers", {}, "toolu_w3"),
                   ("run_command", {"server": "ghost", "command": "echo three"}, "toolu_w4")],
                  text="Two at once."),
        text("Thinking it over...", stop_reason="pause_turn"),
        tool_use("read_file", {"server": ssh_server, "path": "/etc/hostname"}, id="toolu_w5"),
        text("All done."),
    )
    r = cli("ask", "-s", ssh_server, "do several things")
    assert r.exit_code == 0, r.stderr
    assert len(anthropic_api.requests) == 6  # one of them the broken stream, asked again
    for i, body in enumerate(anthropic_api.requests):
        if i == 4:  # the request after pause_turn ends with the paused assistant turn
            assert body["messages"][-1]["role"] == "assistant"
            body = {**body, "_pause_ok": True}
        check_request(body)

    anthropic_api.push(text("Continued."))
    r2 = cli("ask", "--continue", "and one more thing")
    assert r2.exit_code == 0, r2.stderr
    check_request(anthropic_api.last)
    # the conversation so far is sent again, including each earlier turn
    sent = json.dumps(anthropic_api.last["messages"])
    for marker in ("do several things", "toolu_w1", "toolu_w4", "Thinking it over...", "toolu_w5", "All done.",
                   "and one more thing"):
        assert marker in sent
    assert "echo never" not in sent


def test_chat_turns_keep_the_cache_breakpoints_within_the_limit(anthropic_api, cli, ssh_server):
    anthropic_api.push(*[text(f"answer {i}") for i in range(5)])
    r = cli("chat", "-s", ssh_server, input="".join(f"question {i}\n" for i in range(5)))
    assert r.exit_code == 0, r.stderr
    assert len(anthropic_api.requests) == 5
    for body in anthropic_api.requests:
        check_request(body)
    # the history itself never accumulates breakpoints: only the newest block carries one
    last = anthropic_api.last["messages"]
    assert sum(json.dumps(m).count("cache_control") for m in last) == 1
    assert "cache_control" in json.dumps(last[-1])
