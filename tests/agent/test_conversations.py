"""`vpsagent conversations list|show|export` and `vpsagent chat` (driven through stdin)."""

from __future__ import annotations

import json

from tests.agent._helpers import conversation, conversations, history
from tests.fakes.anthropic_api import overloaded, text, tool_use


def _one_conversation(anthropic_api, cli, ssh_server) -> int:
    anthropic_api.push(
        tool_use("run_command", {"server": ssh_server, "command": "echo uptime-ok"}, id="toolu_c1"),
        text("The server is up.", usage={"input_tokens": 500, "output_tokens": 100, "cache_read_input_tokens": 40}),
    )
    r = cli("ask", "--json", "-s", ssh_server, "is the server up?")
    assert r.exit_code == 0, r.stdout + r.stderr
    return r.json()["data"]["conversation_id"]


def test_list_shows_conversations_newest_first(anthropic_api, cli, ssh_server):
    first = _one_conversation(anthropic_api, cli, ssh_server)
    anthropic_api.push(text("second answer"))
    assert cli("ask", "-s", ssh_server, "a second question").exit_code == 0
    r = cli("conversations", "list", "--json")
    assert r.exit_code == 0, r.stderr
    rows = r.json()["data"]["conversations"]
    assert [row["title"] for row in rows] == ["a second question", "is the server up?"]
    older = rows[1]
    assert older["id"] == first and older["servers"] == [ssh_server] and older["messages"] == 4
    assert (older["input_tokens"], older["output_tokens"], older["cache_read_tokens"]) == (600, 120, 40)
    text_out = cli("conversations", "list")
    assert text_out.exit_code == 0
    assert "is the server up?" in text_out.stdout and "a second question" in text_out.stdout
    assert cli("conversations", "list", "--limit", "1", "--json").json()["data"]["conversations"][0]["title"] == \
        "a second question"


def test_list_when_empty(cli, engine):
    r = cli("conversations", "list", "--json")
    assert r.exit_code == 0
    assert r.json()["data"]["conversations"] == []


def test_show_and_export_markdown(anthropic_api, cli, ssh_server):
    conv_id = _one_conversation(anthropic_api, cli, ssh_server)
    shown = cli("conversations", "show", str(conv_id))
    assert shown.exit_code == 0, shown.stderr
    md = cli("conversations", "export", str(conv_id), "--format", "md")
    assert md.exit_code == 0
    for out in (shown.stdout, md.stdout):
        assert out.startswith(f"# is the server up? (#{conv_id})")
        assert "## User" in out and "## Assistant" in out and "## Tool results" in out
        assert "echo uptime-ok" in out and "uptime-ok" in out
        assert "The server is up." in out
        assert f"servers: {ssh_server}" in out


def test_show_json_and_export_json_hold_the_stored_messages(anthropic_api, cli, engine, ssh_server):
    conv_id = _one_conversation(anthropic_api, cli, ssh_server)
    _, msgs = conversation(engine, conv_id)
    shown = cli("conversations", "show", "--json", str(conv_id))
    assert shown.exit_code == 0
    data = shown.json()["data"]
    assert data["conversation"]["id"] == conv_id
    assert [m["content"] for m in data["messages"]] == [m.content for m in msgs]
    exported = cli("conversations", "export", str(conv_id), "--format", "json")
    assert exported.exit_code == 0
    doc = json.loads(exported.stdout)
    assert [m["role"] for m in doc["messages"]] == ["user", "assistant", "user", "assistant"]
    assert doc["conversation"]["output_tokens"] == 120


def test_export_to_a_file(anthropic_api, cli, ssh_server, tmp_path):
    conv_id = _one_conversation(anthropic_api, cli, ssh_server)
    out = tmp_path / "incident.md"
    r = cli("conversations", "export", str(conv_id), "-o", str(out))
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    assert "The server is up." in out.read_text()


def test_unknown_conversation_is_a_clear_error(cli, engine):
    for args in (("show", "999"), ("export", "999")):
        r = cli("conversations", *args)
        assert r.exit_code == 2
        assert "no conversation 999" in r.stderr and "Traceback" not in r.stderr
    assert cli("conversations", "export", "1", "--format", "pdf").exit_code == 2


def test_continue_by_id(anthropic_api, cli, engine, ssh_server):
    conv_id = _one_conversation(anthropic_api, cli, ssh_server)
    anthropic_api.push(text("unrelated"))
    assert cli("ask", "-s", ssh_server, "another conversation").exit_code == 0
    anthropic_api.push(text("Still up."))
    r = cli("ask", "--json", "--conversation", str(conv_id), "and now?")
    assert r.exit_code == 0, r.stdout + r.stderr
    assert r.json()["data"]["conversation_id"] == conv_id
    sent = anthropic_api.last["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user", "assistant", "user"]
    assert "is the server up?" in json.dumps(sent[0]) and "and now?" in json.dumps(sent[-1])
    assert "another conversation" not in json.dumps(sent)
    assert cli("ask", "--conversation", "4242", "x").exit_code == 2
    assert cli("ask", "--continue", "--conversation", str(conv_id), "x").exit_code == 2


def test_continue_with_nothing_to_continue(anthropic_api, cli, engine):
    r = cli("ask", "--continue", "hello")
    assert r.exit_code == 2
    assert "no conversation" in r.stderr
    assert anthropic_api.requests == []


def test_chat_keeps_one_conversation_across_turns(anthropic_api, cli, engine, ssh_server):
    anthropic_api.push(
        text("Hello! Ask me about t1."),
        tool_use("run_command", {"server": ssh_server, "command": "echo chat-cmd"}, id="toolu_chat"),
        text("It printed chat-cmd."),
    )
    r = cli("chat", "-s", ssh_server, input="hi there\nrun something\n")
    assert r.exit_code == 0, r.stderr
    assert "Hello! Ask me about t1." in r.stdout and "It printed chat-cmd." in r.stdout
    (conv,) = conversations(engine)
    assert conv.title == "hi there"
    _, msgs = conversation(engine, conv.id)
    assert [m.role for m in msgs] == ["user", "assistant", "user", "assistant", "user", "assistant"]
    # the second turn was sent with the first one as history
    second = anthropic_api.requests[1]["messages"]
    assert "hi there" in json.dumps(second[0]) and "Hello! Ask me about t1." in json.dumps(second[1])
    assert "run something" in json.dumps(second[2])
    # the command, and the probe for the read-only sandbox it ran in, both belong to the chat
    assert [(h.source, h.conversation_id) for h in history(engine, probes=True)] == [("sandbox", conv.id),
                                                                                     ("ask", conv.id)]
    assert f"conversation #{conv.id}" in r.stderr


def test_chat_leaves_on_exit_and_skips_blank_lines(anthropic_api, cli, engine, ssh_server):
    anthropic_api.push(text("one"))
    r = cli("chat", "-s", ssh_server, input="\n   \nonly question\n/exit\nnever sent\n")
    assert r.exit_code == 0, r.stderr
    assert len(anthropic_api.requests) == 1
    assert "never sent" not in anthropic_api.all_bodies()


def test_chat_survives_an_api_failure_and_goes_on(anthropic_api, cli, engine, ssh_server):
    anthropic_api.push(text("first"), overloaded(), overloaded(), overloaded(), text("third"))
    r = cli("chat", "-s", ssh_server, input="one\ntwo\nthree\n")
    assert r.exit_code == 0, r.stderr
    assert "error:" in r.stderr and "529" in r.stderr
    assert "first" in r.stdout and "third" in r.stdout
    assert len(conversations(engine)) == 1
    sent = json.dumps(anthropic_api.last["messages"])
    assert "one" in sent and "two" in sent and "three" in sent


def test_chat_denied_without_a_tty_exits_4(anthropic_api, cli, ssh_server, tmp_path):
    target = tmp_path / "chat-touch"
    anthropic_api.push(tool_use("run_command", {"server": ssh_server, "command": f"touch {target}"}), text("denied"))
    r = cli("chat", "-s", ssh_server, input="make the file\n")
    assert r.exit_code == 4
    assert not target.exists()


def test_chat_refuses_json(cli, ssh_server):
    r = cli("chat", "--json", "-s", ssh_server)
    assert r.exit_code == 2
