"""Which servers the agent may use: -s, -t, several servers, and one that is down."""

from __future__ import annotations

import json
import socket

from tests.agent._helpers import history, result_text, tool_result
from tests.fakes.anthropic_api import text, tool_use, tool_uses
from tests.sshd import register_sshd


def test_tag_selects_servers_and_commands_go_to_the_one_named(anthropic_api, cli, engine, keyring, sshd):
    register_sshd(engine, keyring, sshd, "web1", tags=["web"])
    register_sshd(engine, keyring, sshd, "web2", tags=["web"], address="127.0.0.2")
    register_sshd(engine, keyring, sshd, "db1", tags=["db"], address="127.0.0.3")
    anthropic_api.push(
        tool_uses([
            ("run_command", {"server": "web1", "command": "echo on-web1"}, "toolu_w1"),
            ("run_command", {"server": "web2", "command": "echo on-web2"}, "toolu_w2"),
            ("run_command", {"server": "db1", "command": "echo on-db1"}, "toolu_d1"),
        ]),
        text("Both web servers answered."),
    )
    r = cli("ask", "--json", "-t", "web", "check the web tier")
    assert r.exit_code == 0, r.stdout + r.stderr
    assert r.json()["data"]["servers"] == ["web1", "web2"]
    assert "on-web1" in result_text(tool_result(anthropic_api, "toolu_w1"))
    assert "on-web2" in result_text(tool_result(anthropic_api, "toolu_w2"))
    db = tool_result(anthropic_api, "toolu_d1")
    assert db.get("is_error") is True and "unknown server 'db1'" in result_text(db)
    system = json.dumps(anthropic_api.requests[0]["system"])
    assert "web1" in system and "web2" in system and "db1" not in system
    assert [(h.server, h.command) for h in history(engine, source="ask")] == [("web1", "echo on-web1"),
                                                                               ("web2", "echo on-web2")]


def test_unknown_server_or_empty_tag_on_the_command_line(anthropic_api, cli, engine):
    r = cli("ask", "-s", "nope", "hi")
    assert r.exit_code == 2 and "unknown server 'nope'" in r.stderr
    r = cli("ask", "-t", "no-such-tag", "hi")
    assert r.exit_code == 2
    assert anthropic_api.requests == []


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_a_server_that_is_down_is_an_error_result_and_the_rest_goes_on(ctx, anthropic_api, cli, engine, keyring, sshd,
                                                                      ssh_server):
    from vpsagent.services.servers import ServerSpec, add_server

    add_server(ctx, ServerSpec(name="down1", host="127.0.0.1", port=_closed_port(),
                                                   user=sshd.user, key_path=sshd.client_key_path))
    anthropic_api.push(
        tool_uses([
            ("run_command", {"server": "down1", "command": "uptime"}, "toolu_down"),
            ("run_command", {"server": ssh_server, "command": "echo still-here"}, "toolu_up"),
        ]),
        text("down1 is unreachable; t1 is fine."),
    )
    r = cli("ask", "-s", "down1", "-s", ssh_server, "check both")
    # the answer came, but without down1: exit 5, as `run` would, not 0
    assert r.exit_code == 5, r.stderr
    assert "warning: not reached: down1: connection refused" in r.stderr
    down = tool_result(anthropic_api, "toolu_down")
    assert down.get("is_error") is True and "unreachable" in result_text(down)
    assert "still-here" in result_text(tool_result(anthropic_api, "toolu_up"))
    assert r.stdout.strip() == "down1 is unreachable; t1 is fine."
    assert "✗ error: server down1 unreachable" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_changed_host_key_is_an_error_result_and_nothing_runs(anthropic_api, cli, engine, keyring, sshd, tmp_path):
    from vpsagent.db.inventory import pin_host_key

    register_sshd(engine, keyring, sshd, "moved", pin=False)
    # pin another key (the client's) as if the server had been replaced since
    key_type, key_b64 = sshd.client_pub.split()[:2]
    pin_host_key(engine, "moved", key_type, key_b64, "SHA256:not-the-real-one")
    marker = tmp_path / "ran-despite-mismatch"
    anthropic_api.push(
        tool_use("run_command", {"server": "moved", "command": f"echo hi > {marker}"}, id="toolu_hk"),
        text("The host key changed; I did not connect."),
    )
    r = cli("ask", "--json", "--yes", "-s", "moved", "say hi")
    assert r.exit_code == 5, r.stderr
    doc = r.json()
    assert doc["ok"] is False and doc["exit_code"] == 5
    [err] = doc["errors"]
    assert err["code"] == "unreachable" and err["tool_use_id"] == "toolu_hk" and "HOST KEY CHANGED" in err["message"]
    res = tool_result(anthropic_api, "toolu_hk")
    assert res.get("is_error") is True and "unreachable" in result_text(res)
    assert not marker.exists()
    # the person running it sees why too, not only the model
    assert "unreachable" in r.stderr and "moved" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_server_reached_by_a_later_call_leaves_the_answer_standing():
    """The rule for exit 5: a server counts as unreached unless a later call reached it."""
    from vpsagent.services.ask import AskResult

    def call(i: int, server: str, unreachable: str | None) -> dict:
        return {"id": f"toolu_{i}", "server": server, "command": "uptime", "decision": "allow",
                "executed": unreachable is None, "unreachable": unreachable}

    def result(*calls: dict) -> AskResult:
        return AskResult(conversation_id=1, model="m", answer="", stop_reason="end_turn", turns=1,
                         servers=["a", "b"], tool_calls=list(calls), usage={}, cost_usd=0.0)

    came_back = result(call(1, "a", "a: connection refused"), call(2, "a", None))
    assert came_back.unreachable == [] and came_back.errors() == []
    other_reached = result(call(1, "a", "a: connection refused"), call(2, "b", None))
    assert [c["id"] for c in other_reached.unreachable] == ["toolu_1"]
    went_away = result(call(1, "a", None), call(2, "a", "a: connection refused"))
    assert [e["code"] for e in went_away.errors()] == ["unreachable"]
