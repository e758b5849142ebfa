"""The built-in `local` server behind the Host interface."""

from __future__ import annotations

from vpsagent.remote.local import LocalHost


def test_exit_codes_streams_and_signals():
    h = LocalHost()
    seen: list[bytes] = []
    r = h.run("echo out; echo err >&2; exit 3", on_stdout=seen.append)
    assert (r.exit_code, r.status, r.stdout, r.stderr) == (3, "failed", b"out\n", b"err\n")
    assert b"".join(seen) == b"out\n"
    r = h.run("kill -9 $$")
    assert r.exit_code is None and r.status == "failed" and "SIGKILL" in (r.error or "")


def test_timeout_kills_and_stdin_is_not_forwarded():
    h = LocalHost()
    r = h.run("sleep 5; echo late", timeout=0.3)
    assert r.status == "timeout" and r.exit_code is None and b"late" not in r.stdout
    r = h.run("cat; echo done")
    assert r.ok and r.stdout == b"done\n"


def test_capture_is_bounded_but_counts_everything():
    r = LocalHost().run("head -c 3000000 /dev/zero", capture=1000)
    assert r.stdout_bytes == 3_000_000 and r.stdout_truncated and len(r.stdout) < 2000


def test_vpsagent_secrets_are_not_in_the_command_environment(monkeypatch):
    monkeypatch.setenv("VPSAGENT_SECRET", "master-secret-in-env-123")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-api03-in-env-456")
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:db-pass-789@127.0.0.1/app")
    monkeypatch.setenv("HARMLESS_SETTING", "kept")
    out = LocalHost().run("env; cat /proc/self/environ | tr '\\0' '\\n'").stdout.decode()
    for needle in ("master-secret-in-env-123", "sk-ant-api03-in-env-456", "db-pass-789"):
        assert needle not in out
    assert "HARMLESS_SETTING=kept" in out
