"""Tool inputs from the model are checked against the schema it was given (issue 10,
item 10): a `timeout_s: "abc"` or a missing command is an error tool_result the model can
correct, and nothing runs — never a silently applied default."""

from __future__ import annotations

from tests.agent._helpers import history, result_text, tool_result
from tests.fakes.anthropic_api import text, tool_uses


def test_inputs_that_do_not_fit_the_schema_are_error_results(anthropic_api, cli, engine, home):
    marker = home / "ran"
    anthropic_api.push(
        tool_uses([
            ("run_command", {"server": "local", "command": f"touch {marker}", "timeout_s": "abc"}, "toolu_t1"),
            ("run_command", {"server": "local", "command": f"touch {marker}", "timeout_s": True}, "toolu_t2"),
            ("run_command", {"server": "local"}, "toolu_t3"),
            ("read_file", {"server": "local", "path": "/etc/hostname", "max_bytes": 1.5}, "toolu_t4"),
            ("write_file", {"server": "local", "path": str(marker), "content": ["x"]}, "toolu_t5"),
            ("run_command", {"server": "local", "command": "echo fine", "timeout_s": 30}, "toolu_ok"),
        ]),
        text("done"),
    )
    r = cli("ask", "-s", "local", "--yes", "go")
    assert r.exit_code == 0, r.stderr
    expected = {"toolu_t1": "timeout_s must be a number, got \"abc\"", "toolu_t2": "timeout_s must be a number",
                "toolu_t3": "missing required 'command'", "toolu_t4": "max_bytes must be an integer",
                "toolu_t5": "content must be a string"}
    for tid, needle in expected.items():
        res = tool_result(anthropic_api, tid)
        assert res.get("is_error") is True and needle in result_text(res), (tid, result_text(res))
    assert "fine" in result_text(tool_result(anthropic_api, "toolu_ok"))
    assert not marker.exists()
    assert [h.command for h in history(engine, source="ask")] == ["echo fine"]
