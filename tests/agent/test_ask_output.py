"""What reaches the model: bounded tool output and no stored credential, ever.

The recorded request bodies of the fake API are exactly what the SDK sent; they are
searched both as sent (JSON text) and as decoded strings, so a multi-line secret escaped
as `\\n` in JSON cannot hide.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.agent._helpers import conversation, history, result_text, tool_result
from tests.fakes.anthropic_api import FAKE_API_KEY, text, tool_use, tool_uses

LIMIT = 32 * 1024


def test_five_megabytes_of_output_reach_the_model_as_at_most_32_kib(anthropic_api, cli, engine, ssh_server):
    anthropic_api.push(
        tool_use("run_command", {"server": ssh_server, "command": "seq 1 750000"}, id="toolu_big"),
        text("A long list of numbers."),
    )
    r = cli("ask", "-s", ssh_server, "count to a lot")
    assert r.exit_code == 0, r.stderr
    content = result_text(tool_result(anthropic_api, "toolu_big"))
    full = 5_138_895  # bytes `seq 1 750000` prints
    assert len(content.encode()) <= LIMIT
    assert content.count("\n") > 100  # a real head and tail, not just a marker
    assert "\n1\n2\n3\n" in content  # the head
    assert "749999\n750000" in content  # the tail
    assert str(full) in content and "cut" in content  # the cut is marked with the full size
    # the whole request stays small, and the stored transcript holds the same bounded copy
    assert len(anthropic_api.raw_bodies[-1]) < 3 * LIMIT
    conv_id = history(engine, source="ask")[0].conversation_id
    _, msgs = conversation(engine, conv_id)
    assert len(json.dumps([m.content for m in msgs]).encode()) < 3 * LIMIT
    (row,) = history(engine, source="ask")
    assert row.stdout_bytes == full and row.exit_code == 0
    # the terminal gets a short echo, not 5 MB
    assert len(r.stderr) < 20_000


def test_a_big_file_read_is_bounded_too(anthropic_api, cli, ssh_server, tmp_path):
    big = tmp_path / "huge.log"
    big.write_text("".join(f"log line {i:07d} ................................\n" for i in range(100_000)))
    anthropic_api.push(
        tool_use("read_file", {"server": ssh_server, "path": str(big), "max_bytes": 4 * 1024 * 1024}, id="toolu_rf"),
        text("big"),
    )
    r = cli("ask", "-s", ssh_server, "read the log")
    assert r.exit_code == 0, r.stderr
    content = result_text(tool_result(anthropic_api, "toolu_rf"))
    assert len(content.encode()) <= LIMIT
    assert "log line 0000000" in content and "cut" in content


def _add_password_server(ctx, sshd, password: str) -> str:
    from vpsagent.secret import Secret
    from vpsagent.services.servers import ServerSpec, add_server

    add_server(ctx, ServerSpec(name="pw1", host="127.0.0.1", port=sshd.port, user="deploy",
                                                   password=Secret(password)))
    return "pw1"


TOKENS = {
    "github": "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
    "anthropic": "sk-ant-api03-" + "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBa-_Zx9Yw8",
    "aws": "AKIA" + "IOSFODNN7EXAMPLQ",
    "slack": "xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "gitlab": "glpat-" + "xY7_zQ2-wV9uT4sR1pN6",
    "stripe": "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
}


def test_stored_secrets_never_reach_the_model(ctx, anthropic_api, cli, engine, settings, keyring, sshd, ssh_server,
                                              tmp_path):
    password = "Tr0ub4dor&3-horse-battery"
    pw_server = _add_password_server(ctx, sshd, password)
    private_key = Path(sshd.client_key_path).read_text()  # stored (encrypted) for ssh_server
    key_lines = [ln for ln in private_key.splitlines() if ln and not ln.startswith("-----")]
    master_key = settings.key_file.read_text().strip()

    leaky = tmp_path / "leaky"
    leaky.mkdir()
    (leaky / "app.env").write_text(
        f"DB_HOST=db1\nDB_PASSWORD={password}\nmotd: the deploy password is {password} (do not share)\n"
        f"ANTHROPIC_KEY {FAKE_API_KEY}\nvault={master_key}\n"
        + "".join(f"{name}: {tok}\n" for name, tok in TOKENS.items())
    )
    (leaky / "backup.txt").write_text("old key follows\n" + private_key)
    cmds = [
        f"cat {leaky}/app.env",
        f"grep -v -- ----- {leaky}/backup.txt",  # the key's bare base64 lines, no BEGIN/END around them
        f"cat {leaky}/backup.txt",
        f"cat {sshd.client_key_path}",  # the real stored key file (a credential read: --yes approves it)
        # the secret comes from the server's output, never from the model's own words
        f"sed -n 2,5p {leaky}/app.env | tr -d '=' ",
    ]
    anthropic_api.push(
        tool_uses([("run_command", {"server": ssh_server, "command": c}, f"toolu_x{i}") for i, c in enumerate(cmds)]),
        tool_uses([
            ("read_file", {"server": ssh_server, "path": f"{leaky}/app.env"}, "toolu_x10"),
            ("read_file", {"server": ssh_server, "path": f"{leaky}/backup.txt"}, "toolu_x11"),
        ]),
        text("I looked at the configuration."),
    )
    r = cli("ask", "--yes", "-s", ssh_server, "-s", pw_server, "what is configured?")
    assert r.exit_code == 0, r.stderr
    # the tools really ran and returned (redacted) output
    assert "DB_HOST=db1" in result_text(tool_result(anthropic_api, "toolu_x0"))
    assert "[REDACTED]" in result_text(tool_result(anthropic_api, "toolu_x1"))
    assert "old key follows" in result_text(tool_result(anthropic_api, "toolu_x11"))

    bodies, strings = anthropic_api.all_bodies(), anthropic_api.all_strings()
    secrets = {"password": password, "private key": private_key.strip(), "master key": master_key,
               "api key": FAKE_API_KEY, **TOKENS}
    secrets.update({f"key line {i}": ln for i, ln in enumerate(key_lines)})
    for what, value in secrets.items():
        assert value not in bodies, f"{what} reached the model (raw body)"
        assert value not in strings, f"{what} reached the model (decoded)"
    # nor the stored transcript or the audit log's excerpts
    conv_id = history(engine, source="ask")[0].conversation_id
    _, msgs = conversation(engine, conv_id)
    stored = json.dumps([m.content for m in msgs])
    excerpts = "\n".join((h.stdout_excerpt or "") + (h.stderr_excerpt or "") for h in history(engine))
    for what, value in secrets.items():
        assert value not in stored, f"{what} stored in the transcript"
        assert value not in excerpts, f"{what} stored in the audit log"


def test_piped_context_is_redacted_too(ctx, anthropic_api, cli, engine, keyring, sshd, ssh_server):
    password = "piped-secret-Zq81!x"
    pw_server = _add_password_server(ctx, sshd, password)
    anthropic_api.push(text("ok"))
    r = cli("ask", "-s", ssh_server, "-s", pw_server, "what is in this log?",
            input=f"login ok\nconnecting with {password}\ntoken {TOKENS['github']}\n")
    assert r.exit_code == 0, r.stderr
    assert "login ok" in anthropic_api.all_strings()
    assert password not in anthropic_api.all_bodies()
    assert TOKENS["github"] not in anthropic_api.all_bodies()


def test_denial_summary_says_what_would_let_each_kind_run():
    from vpsagent.render.agent import denial_summary as _denial_summary

    # it reads each denial's cause and risk, never the prose of the reason
    needs = {"risk": "change", "cause": "no_approver", "reason": "anything"}
    unknown = {"risk": "unknown", "cause": "no_approver", "reason": "anything"}
    destructive = {"risk": "destructive", "cause": "destructive", "reason": "anything"}
    line = _denial_summary([needs, destructive])
    assert line.startswith("2 commands were denied")
    assert "--yes" in line and "policy allow rule" in line and "--yes never does" in line
    only_destructive = _denial_summary([destructive])
    assert "approve them on a terminal" not in only_destructive  # --yes would not help here
    only_unknown = _denial_summary([unknown])
    assert "exact command" in only_unknown and "--yes does not" in only_unknown
    read_only = _denial_summary([{"risk": "change", "cause": "read_only_mode", "reason": ""}])
    assert "--read-only allows inspection only" in read_only
    by_rule = _denial_summary([{"risk": "read-only", "cause": "deny_rule", "reason": ""}])
    assert "deny rule" in by_rule
    declined = _denial_summary([{"risk": "change", "cause": "declined", "reason": "Needs approval on w: x"}])
    assert declined == "1 command was denied (reasons above)"


def test_escape_sequences_from_the_model_or_server_are_shown_inert(anthropic_api, cli, ssh_server):
    """A command or output carrying ESC[1A ESC[2K could redraw the approval prompt."""
    sneaky = "echo ok #\x1b[1A\x1b[2Kharmless"
    anthropic_api.push(tool_use("run_command", {"server": ssh_server, "command": sneaky}), text("done"))
    r = cli("ask", "-s", ssh_server, "x")
    assert "\x1b" not in r.stderr and "\\x1b[1A" in r.stderr
    from vpsagent.render.stream import inert as _safe

    assert _safe("a\rb\x07c\x9bd\te\nf") == "a\\x0db\\x07c\\x9bd\te\nf"
