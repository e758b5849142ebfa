"""Acceptance tests for issue 11, items 1-3 (everyday use), written from the issue text alone.

Written by an outside tester who did not read vpsagent/ (only README.md, docs/, man/,
DESIGN.md and the test fixtures), so that these cases are not written by the hands that
write the code. Everything runs the CLI as a real subprocess (`sys.executable -m vpsagent`)
with a fresh VPSAGENT_HOME, a fresh SQLite database and a fake HOME (so ~/.ssh is ours),
against the suite's real OpenSSH sshd (tests/sshd.py); interactive sessions run on a real
PTY through pexpect.

Features covered:
  1. `vpsagent ssh NAME [-- COMMAND]` (PTY, window size, Ctrl-C/Ctrl-D, stored credentials,
     pinned host key, audit rows, `--record FILE` asciicast v2, `-L`), `vpsagent cp [-r]`.
  2. Completion (click's `_VPSAGENT_COMPLETE` protocol) and `vpsagent completion bash|zsh|fish`.
  3. `servers import`: Match blocks skipped with a warning, Include (globs, relative to
     ~/.ssh), `ProxyJump user@host:port` creates or matches the jump host.

Assumptions beyond the issue text (each one is what a user of OpenSSH/scp/click expects;
change the test, not the feature, if the lead decided otherwise):
  A1. The sessions and copies are audited with `history --source ssh` / `--source cp`
      (those values are already in `history --help`); the row's `server` is the server
      name, `user` the OS user running vpsagent, `exit_code` the remote exit status, and
      `started_at`/`finished_at` are set. An interactive session's row is `running` while
      the session is open (the audit contract: written before it starts).
  A2. `vpsagent ssh NAME -- COMMAND` exits with a non-zero status when the remote command
      fails: either the remote status itself (like ssh) or 1 (like `run`); both accepted.
      A clean session (Ctrl-D or `exit`) exits 0.
  A3. `vpsagent ssh NAME -- COMMAND` with stdin not a terminal allocates no PTY (like ssh
      without -t): stdout carries the remote stdout byte for byte, and local stdin is
      forwarded to the remote command (like ssh, unlike `run`).
  A4. An interactive session sends the local TERM and forwards window-size changes
      (SIGWINCH) to the remote PTY.
  A5. `--record FILE` writes asciicast v2: a JSON header line with version 2 and the
      terminal's width/height, then `[seconds, "o", text]` event lines with non-decreasing
      times whose concatenated "o" text holds the session output.
  A6. `-L LPORT:HOST:RPORT` binds LPORT on 127.0.0.1 for as long as the session lasts and
      stops listening when it ends; a malformed spec is bad input (exit 2).
  A7. Host key mismatch on `ssh` is exit 5 with both fingerprints in the message (as for
      `run`, docs/run.md); an unreachable server is exit 5.
  A8. `cp` follows cp/scp semantics: `cp FILE NAME:DIR` (an existing directory) copies into
      it under the same base name; `cp -r DIR NAME:NEW` (NEW absent) makes NEW a copy of
      DIR; a directory without -r is bad input (exit 2, nothing copied); two local paths
      are bad input (exit 2). Remote paths are taken literally (spaces are fine: SFTP, no
      shell).
  A9. `cp` preserves file permission bits in both directions (the brief asks "byte for byte
      incl. modes"); empty directories are copied by -r. Off a terminal there is no progress
      bar (no carriage returns on stdout/stderr); on a terminal something is shown.
  A10. A missing remote source is a failure with one `error:` line naming the path, exit 1
       or 2 (both accepted), no local file created, and its audit row is not `ok`.
  A11. Completion uses click's protocol: `_VPSAGENT_COMPLETE=bash_complete` with
       COMP_WORDS/COMP_CWORD prints `type,value` lines; zsh_complete and fish_complete work
       too. Server-name completion filters by the typed prefix; `-t` offers tags only (no
       server names). `test run PLAN -s` and `ask -s` complete names like `run -s`. For `cp`, a completed
       server starts with its name (`web1` or `web1:`). Plan files complete either as
       click `file` items or as the plan files (*.yaml/*.yml) in the directory.
       Conversation ids complete as the numeric ids after `conversations show|export` and
       `ask --conversation`. Completion never imports SQLAlchemy/SQLModel (checked with
       `python -X importtime`, not with a timing), and a fresh home completes to nothing
       with exit 0.
  A12. `vpsagent completion bash|zsh|fish` prints a script on stdout that uses the
       `_VPSAGENT_COMPLETE` protocol; the bash one passes `bash -n` and, sourced in bash,
       its registered function fills COMPREPLY with server names. Any other shell (tcsh) is
       exit 2 with nothing on stdout.
  A13. `servers import` keeps exit 0 when it skips a Match block; the warning goes to stderr
       (text mode) and into `data.warnings` (with --json) and mentions "Match". Lines inside
       a Match block apply to no host. `Host *` and pattern hosts are not imported.
  A14. `Include` follows OpenSSH: relative paths are relative to ~/.ssh (also when
       --ssh-config names another file), globs expand, an Include that matches nothing is
       not an error, a file that includes itself ends (no hang, no traceback).
  A15. For `ProxyJump user@host:port` the jump host is an inventory server with exactly
       that host, port and user — an existing one (added earlier or imported in the same
       run) when one matches, otherwise a new one (its name is not specified); importing
       again creates no duplicate. A jump host created from a spec has no stored
       credentials, so it authenticates the way `ssh` would (~/.ssh/id_*), as the README
       says for servers added without credentials.
  A16. Only SQLite is exercised here (the PostgreSQL run is the rest of the suite's job).
  A17. Servers are registered through the CLI (`servers add --key COPY --host-key LINE`, then
       the key copy is deleted), so every ssh/cp test also checks that the stored, encrypted
       key and the pinned host key are what is used; HOME has no usable key and
       SSH_AUTH_SOCK is unset.

Harness notes: the module defines its own session `sshd` fixture (same as tests/sshd.py's)
and its own `vps` world, so it runs from inside or outside tests/; it only needs
`tests.sshd` and `tests.fakes.anthropic_api` importable (cwd or PYTHONPATH = the checkout).
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest


def _ensure_repo_on_path() -> None:
    """`tests.sshd` lives in the repository; this file may be collected from outside it."""
    candidates = [Path.cwd(), *(Path(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)]
    candidates += list(Path(__file__).resolve().parents)
    for c in candidates:
        if (c / "tests" / "sshd.py").exists():
            if str(c) not in sys.path:
                sys.path.insert(0, str(c))
            return


_ensure_repo_on_path()

from tests.fakes.anthropic_api import FAKE_API_KEY, FakeAnthropicAPI  # noqa: E402
from tests.sshd import SSHD, free_port, start_sshd  # noqa: E402

pexpect = pytest.importorskip("pexpect")

# Variables a developer's shell may carry that would leak into the CLI under test.
_SCRUB = [
    "VPSAGENT_SECRET", "SESSION_SECRET", "VPSAGENT_NEW_SECRET", "DATABASE_URL", "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL", "VPSAGENT_MODEL", "VPSAGENT_SMTP_URL", "VPSAGENT_MAIL_FROM", "GITHUB_TOKEN",
    "GITHUB_API_URL", "VPSAGENT_POLICY", "VPSAGENT_TRACEBACK", "XDG_CONFIG_HOME", "XDG_DATA_HOME",
    "NO_COLOR", "SSH_AUTH_SOCK", "VPSAGENT_TOKEN", "COMP_WORDS", "COMP_CWORD", "_VPSAGENT_COMPLETE",
]
SECRET = "accept-11-master-secret-0123456789abcdef"
ME = getpass.getuser()


# --------------------------------------------------------------------------- harness


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHD]:
    """A real OpenSSH sshd on 127.0.0.1 … 127.0.0.8 (one port), as tests/sshd.py's fixture."""
    server = start_sshd(tmp_path_factory.mktemp("sshd-accept"), [f"127.0.0.{i}" for i in range(1, 9)])
    try:
        yield server
    finally:
        server.kill_all()


@dataclass
class Vps:
    """One user's world: VPSAGENT_HOME, SQLite database, HOME with its own ~/.ssh."""

    root: Path
    env: dict[str, str]
    home: Path  # $HOME
    children: list[Any] = field(default_factory=list)

    @property
    def dot_ssh(self) -> Path:
        return self.home / ".ssh"

    def run(self, *args: str, input: bytes | str | None = None, cwd: Path | None = None,
            env: dict[str, str] | None = None, timeout: float = 120,
            python_flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
        data = input.encode() if isinstance(input, str) else input
        full = dict(self.env)
        full.update(env or {})
        return subprocess.run([sys.executable, *python_flags, "-m", "vpsagent", *args], input=data,
                              capture_output=True, env=full, timeout=timeout, cwd=str(cwd or self.root))

    def ok(self, *args: str, **kw: Any) -> subprocess.CompletedProcess:
        r = self.run(*args, **kw)
        assert r.returncode == 0, _show(r)
        return r

    def json(self, *args: str, **kw: Any) -> dict[str, Any]:
        r = self.run(*args, "--json", **kw)
        assert r.returncode == 0, _show(r)
        return json.loads(r.stdout)

    def history(self, source: str | None = None) -> list[dict[str, Any]]:
        extra = ["--source", source] if source else []
        return self.json("history", "--limit", "0", *extra)["data"]["entries"]

    def server(self, name: str) -> dict[str, Any]:
        return self.json("servers", "show", name)["data"]["server"]

    def servers(self) -> list[dict[str, Any]]:
        return self.json("servers", "list")["data"]["servers"]

    def spawn(self, *args: str, rows: int = 24, cols: int = 80, term: str = "xterm-256color") -> Any:
        env = dict(self.env, TERM=term)
        child = pexpect.spawn(sys.executable, ["-m", "vpsagent", *args], env=env, cwd=str(self.root),
                              dimensions=(rows, cols), timeout=30)
        self.children.append(child)
        return child

    def complete(self, words: str, shell: str = "bash", cwd: Path | None = None,
                 python_flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
        """Ask the program for completions the way click's shell scripts do."""
        parts = words.split(" ")
        env = {"_VPSAGENT_COMPLETE": f"{shell}_complete", "COMP_WORDS": words,
               "COMP_CWORD": str(len(parts) - 1)}
        if shell == "fish":
            env["COMP_WORDS"] = words
            env["COMP_CWORD"] = parts[-1]
        return self.run(cwd=cwd, env=env, python_flags=python_flags, timeout=60)

    def completions(self, words: str, cwd: Path | None = None) -> list[tuple[str, str]]:
        r = self.complete(words, cwd=cwd)
        assert r.returncode == 0, _show(r)
        assert b"Traceback" not in r.stderr, _show(r)
        items = []
        for line in r.stdout.decode().splitlines():
            if line:
                kind, _, value = line.partition(",")
                items.append((kind, value))
        return items


def _show(r: subprocess.CompletedProcess) -> str:
    return (f"exit {r.returncode}\nstdout: {r.stdout[-3000:]!r}\nstderr: {r.stderr[-3000:]!r}")


def _one_error_line(r: subprocess.CompletedProcess) -> str:
    """The documented bad-input shape: nothing on stdout, one `error:` line, no traceback."""
    err = r.stderr.decode(errors="replace")
    assert "Traceback" not in err, _show(r)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1, _show(r)
    assert r.stdout.strip() == b"", _show(r)
    return errors[0]


@pytest.fixture
def vps(tmp_path: Path) -> Iterator[Vps]:
    home = tmp_path / "userhome"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh").chmod(0o700)
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env.update({
        "VPSAGENT_HOME": str(tmp_path / "vpsagent-home"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'vpsagent-home' / 'data' / 'vpsagent.db'}",
        "VPSAGENT_SECRET": SECRET,
        "HOME": str(home),
        "TERM": "dumb",
        "COLUMNS": "200",
    })
    v = Vps(root=tmp_path, env=env, home=home)
    try:
        yield v
    finally:
        for child in v.children:  # only the processes this test started
            if child.isalive():
                child.terminate(force=True)


def _add_server(vps: Vps, server: SSHD, name: str, *, address: str | None = None,
                tags: tuple[str, ...] = (), host_key: str | None = None) -> None:
    """`servers add` with the key from a copy that is deleted afterwards (README: allowed)."""
    copy = vps.root / f"key-{name}"
    shutil.copyfile(server.client_key_path, copy)
    copy.chmod(0o600)
    tag_args = [a for t in tags for a in ("-t", t)]
    key_line = host_key or f"{server.host_key_type} {server.host_key_base64}"
    vps.ok("servers", "add", name, "--host", address or server.host, "--port", str(server.port),
           "--user", server.user, "--key", str(copy), "--host-key", key_line, *tag_args)
    copy.unlink()


@pytest.fixture
def t1(vps: Vps, sshd: SSHD) -> SSHD:
    """The session sshd as server `t1`, key stored encrypted, host key pinned, key file gone."""
    _add_server(vps, sshd, "t1")
    return sshd


def _roundtrip(child: Any, n: int) -> None:
    """Type a command whose output differs from what was typed, and wait for that output."""
    child.sendline(f"echo MARK$(({n}+1))".encode())
    child.expect(f"MARK{n + 1}".encode())


def _finish(child: Any) -> int:
    child.expect(pexpect.EOF, timeout=30)
    child.close()
    assert child.exitstatus is not None, f"killed by signal {child.signalstatus}"
    return int(child.exitstatus)


def _last(entries: list[dict[str, Any]]) -> dict[str, Any]:
    assert entries, "no audit row"
    return entries[0]  # newest first


# --------------------------------------------------------------------------- 1. vpsagent ssh


def test_ssh_interactive_session_runs_on_the_server_with_stored_key(vps: Vps, t1: SSHD, tmp_path: Path) -> None:
    marker = tmp_path / "made-by-ssh-session"
    child = vps.spawn("ssh", "t1")
    _roundtrip(child, 41)
    child.sendline(f"touch '{marker}' && echo TOUCHED$((2*3))".encode())
    child.expect(b"TOUCHED6")
    assert marker.exists()  # the same machine: the session really ran on the server
    child.sendline(b"exit")
    assert _finish(child) == 0


def test_ssh_session_uses_the_real_terminal_size_and_term(vps: Vps, t1: SSHD) -> None:
    child = vps.spawn("ssh", "t1", rows=37, cols=123, term="xterm-256color")
    _roundtrip(child, 1)
    child.sendline(b"echo SIZE-$(stty size | tr ' ' x)-TERM-$TERM-TTY-$(tty | cut -c1-5)")
    child.expect(rb"SIZE-(\d+)x(\d+)-TERM-(\S+)-TTY-(\S+)")
    rows, cols, term, tty = child.match.groups()
    assert (int(rows), int(cols)) == (37, 123)
    assert term == b"xterm-256color"
    assert tty == b"/dev/"  # a real PTY on the server, not "not a tty"
    child.sendline(b"exit")
    assert _finish(child) == 0


def test_ssh_session_follows_a_window_resize(vps: Vps, t1: SSHD) -> None:
    child = vps.spawn("ssh", "t1", rows=24, cols=80)
    _roundtrip(child, 2)
    child.setwinsize(50, 160)
    seen = []
    for i in range(40):  # the resize and the typed line travel separately: ask until it arrived
        child.sendline(f"echo S{i}-$(stty size | tr ' ' x)".encode())
        child.expect(f"S{i}-(\\d+)x(\\d+)".encode())
        seen.append(child.match.group(0))
        if child.match.groups() == (b"50", b"160"):
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the remote PTY never saw 50x160: {seen}")
    child.sendline(b"exit")
    assert _finish(child) == 0


def test_ssh_ctrl_c_interrupts_the_remote_command_not_the_session(vps: Vps, t1: SSHD) -> None:
    child = vps.spawn("ssh", "t1")
    _roundtrip(child, 3)
    child.sendline(b"echo GO$((1+1)); sleep 300; echo SLEPT-$((1+1))")
    child.expect(b"GO2")
    time.sleep(0.3)  # let sleep start (not a timing assertion: either way SIGINT ends the list)
    child.send(b"\x03")
    child.sendline(b"echo RC-$?-DONE")
    idx = child.expect([rb"RC-(\d+)-DONE", b"SLEPT-2"])
    assert idx == 0, "sleep ran to completion: Ctrl-C did not reach the server"
    assert child.match.group(1) == b"130"
    assert child.isalive()  # vpsagent itself did not die of the Ctrl-C
    _roundtrip(child, 4)
    child.sendline(b"exit")
    assert _finish(child) == 0


def test_ssh_ctrl_d_ends_the_session_cleanly_and_is_audited(vps: Vps, t1: SSHD) -> None:
    child = vps.spawn("ssh", "t1")
    _roundtrip(child, 5)
    child.send(b"\x04")
    assert _finish(child) == 0
    row = _last(vps.history("ssh"))
    assert row["source"] == "ssh"
    assert row["server"] == "t1"
    assert row["status"] == "ok"
    assert row["exit_code"] == 0
    assert row["user"] == ME
    assert row["started_at"] and row["finished_at"]
    assert row["finished_at"] >= row["started_at"]


def test_ssh_session_is_audited_as_running_while_open(vps: Vps, t1: SSHD) -> None:
    child = vps.spawn("ssh", "t1")
    _roundtrip(child, 6)
    rows = vps.history("ssh")
    assert [r["status"] for r in rows] == ["running"]
    assert rows[0]["server"] == "t1"
    child.sendline(b"exit")
    assert _finish(child) == 0
    rows = vps.history("ssh")
    assert len(rows) == 1 and rows[0]["status"] == "ok"


def test_ssh_session_exit_status_is_recorded(vps: Vps, t1: SSHD) -> None:
    child = vps.spawn("ssh", "t1")
    _roundtrip(child, 7)
    child.sendline(b"exit 7")
    code = _finish(child)
    assert code in (1, 7)
    row = _last(vps.history("ssh"))
    assert row["exit_code"] == 7
    assert row["status"] != "ok"


def test_ssh_command_mode_passes_output_through_and_records_it(vps: Vps, t1: SSHD) -> None:
    r = vps.run("ssh", "t1", "--", "printf 'out\\n'; printf 'err\\n' >&2; exit 3")
    assert r.returncode in (1, 3), _show(r)
    assert r.stdout == b"out\n"  # no PTY off a terminal: no \r\n translation
    assert b"err\n" in r.stderr
    row = _last(vps.history("ssh"))
    assert row["server"] == "t1"
    assert "exit 3" in (row["command"] or "")
    assert row["exit_code"] == 3
    assert row["user"] == ME
    ok = vps.run("ssh", "t1", "--", "true")
    assert ok.returncode == 0, _show(ok)


def test_ssh_command_mode_forwards_stdin(vps: Vps, t1: SSHD, tmp_path: Path) -> None:
    target = tmp_path / "from-stdin"
    payload = bytes(range(256)) * 64
    r = vps.run("ssh", "t1", "--", f"cat > '{target}'", input=payload)
    assert r.returncode == 0, _show(r)
    assert target.read_bytes() == payload


def test_ssh_record_writes_asciicast_v2(vps: Vps, t1: SSHD, tmp_path: Path) -> None:
    cast = tmp_path / "session.cast"
    child = vps.spawn("ssh", "t1", "--record", str(cast), rows=33, cols=101)
    _roundtrip(child, 8)
    child.sendline(b"echo REC$((20+3))")
    child.expect(b"REC23")
    child.sendline(b"exit")
    assert _finish(child) == 0
    lines = cast.read_text().splitlines()
    header = json.loads(lines[0])
    assert header["version"] == 2
    assert (header["width"], header["height"]) == (101, 33)
    assert isinstance(header.get("timestamp"), int)
    events = [json.loads(line) for line in lines[1:] if line.strip()]
    assert events
    times = [e[0] for e in events]
    assert all(isinstance(t, (int, float)) for t in times)
    assert times == sorted(times)
    assert {e[1] for e in events} <= {"o", "i", "r", "m"}
    output = "".join(e[2] for e in events if e[1] == "o")
    assert "REC23" in output and "MARK9" in output


def _echo_server() -> socketserver.ThreadingTCPServer:
    class Upper(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            for line in self.rfile:
                self.wfile.write(line.upper())
                self.wfile.flush()

    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Upper)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return srv


def _connect(port: int, deadline_s: float = 20) -> socket.socket:
    end = time.monotonic() + deadline_s
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=10)
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.1)


def test_ssh_local_port_forward(vps: Vps, t1: SSHD) -> None:
    srv = _echo_server()
    try:
        rport = srv.server_address[1]
        lport = free_port(["127.0.0.1"])
        child = vps.spawn("ssh", "t1", "-L", f"{lport}:localhost:{rport}")
        _roundtrip(child, 10)
        with _connect(lport) as s:
            s.sendall(b"hello through the tunnel\n")
            f = s.makefile("rb")
            assert f.readline() == b"HELLO THROUGH THE TUNNEL\n"
        child.sendline(b"exit")
        assert _finish(child) == 0
        with pytest.raises(OSError):  # the forward ends with the session
            socket.create_connection(("127.0.0.1", lport), timeout=5).close()
    finally:
        srv.shutdown()
        srv.server_close()


def test_ssh_bad_forward_spec_is_bad_input(vps: Vps, t1: SSHD) -> None:
    for spec in ("8080", "abc:localhost:80", "8080:localhost:notaport"):
        r = vps.run("ssh", "t1", "-L", spec, "--", "true", timeout=60)
        assert r.returncode == 2, (spec, _show(r))
        assert "Traceback" not in r.stderr.decode()
    assert vps.history("ssh") == []  # nothing was started


def test_ssh_unknown_server_is_one_error_line(vps: Vps) -> None:
    r = vps.run("ssh", "nosuch", timeout=60)
    assert r.returncode == 2, _show(r)
    assert "nosuch" in _one_error_line(r)


def test_ssh_refuses_a_changed_host_key(vps: Vps, sshd: SSHD, tmp_path: Path) -> None:
    other = tmp_path / "other_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    wrong_type, wrong_b64 = (tmp_path / "other_host_key.pub").read_text().split()[:2]
    wrong_fp = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(other) + ".pub"],
                              check=True, capture_output=True, text=True).stdout.split()[1]
    _add_server(vps, sshd, "spoofed", host_key=f"{wrong_type} {wrong_b64}")
    marker = tmp_path / "must-not-exist"
    r = vps.run("ssh", "spoofed", "--", f"touch '{marker}'", timeout=60)
    assert r.returncode == 5, _show(r)
    line = _one_error_line(r)
    assert wrong_fp in line and sshd.host_key_fingerprint in line
    assert not marker.exists()
    assert all(row["status"] != "ok" for row in vps.history("ssh"))


def test_ssh_unreachable_server_is_exit_5(vps: Vps, sshd: SSHD) -> None:
    port = free_port(["127.0.0.1"])
    vps.ok("servers", "add", "gone", "--host", "127.0.0.1", "--port", str(port), "--user", sshd.user)
    r = vps.run("ssh", "gone", "--", "true", timeout=90)
    assert r.returncode == 5, _show(r)
    assert "gone" in _one_error_line(r)


def test_ssh_help_says_keystrokes_are_not_gated(vps: Vps) -> None:
    r = vps.ok("ssh", "--help")
    text = " ".join(r.stdout.decode().split()).lower()
    assert "--record" in text and "-l" in text
    assert "keystroke" in text  # the issue: "the typed keystrokes are not parsed or gated — say so"


# --------------------------------------------------------------------------- 1. vpsagent cp


def _tree(root: Path) -> dict[str, tuple[str, int, bytes | None]]:
    out: dict[str, tuple[str, int, bytes | None]] = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_dir():
            out[rel] = ("dir", 0, None)
        else:
            out[rel] = ("file", p.stat().st_mode & 0o7777, p.read_bytes())
    return out


def _make_tree(src: Path) -> None:
    (src / "bin").mkdir(parents=True)
    (src / "deep" / "er").mkdir(parents=True)
    (src / "empty").mkdir()
    (src / "a.txt").write_text("alpha\n")
    (src / "a.txt").chmod(0o644)
    (src / "bin" / "run.sh").write_text("#!/bin/sh\necho run\n")
    (src / "bin" / "run.sh").chmod(0o755)
    (src / "deep" / "er" / "data.bin").write_bytes(os.urandom(70_000) + bytes(range(256)))
    (src / "deep" / "er" / "data.bin").chmod(0o600)
    (src / "name with spaces.txt").write_bytes(b"spaced\r\n\x00end")
    (src / "name with spaces.txt").chmod(0o640)


def test_cp_upload_is_byte_for_byte_with_mode(vps: Vps, t1: SSHD, tmp_path: Path) -> None:
    src = tmp_path / "payload.bin"
    data = os.urandom(3 * 1024 * 1024 + 17) + bytes(range(256))
    src.write_bytes(data)
    src.chmod(0o640)
    dest_dir = tmp_path / "remote side"
    dest_dir.mkdir()
    dest = dest_dir / "copied payload.bin"
    r = vps.run("cp", str(src), f"t1:{dest}")
    assert r.returncode == 0, _show(r)
    assert dest.read_bytes() == data
    assert dest.stat().st_mode & 0o7777 == 0o640
    assert b"\r" not in r.stdout + r.stderr  # no progress bar off a terminal


def test_cp_download_is_byte_for_byte_with_mode(vps: Vps, t1: SSHD, tmp_path: Path) -> None:
    remote = tmp_path / "srv" / "tool.sh"
    remote.parent.mkdir()
    data = b"#!/bin/sh\n" + os.urandom(200_000)
    remote.write_bytes(data)
    remote.chmod(0o751)
    local = tmp_path / "here" / "tool.sh"
    local.parent.mkdir()
    r = vps.run("cp", f"t1:{remote}", str(local))
    assert r.returncode == 0, _show(r)
    assert local.read_bytes() == data
    assert local.stat().st_mode & 0o7777 == 0o751


def test_cp_into_existing_directories_keeps_the_base_name(vps: Vps, t1: SSHD, tmp_path: Path) -> None:
    src = tmp_path / "notes.txt"
    src.write_bytes(b"notes\n")
    rdir = tmp_path / "rdir"
    rdir.mkdir()
    vps.ok("cp", str(src), f"t1:{rdir}")
    assert (rdir / "notes.txt").read_bytes() == b"notes\n"
    ldir = tmp_path / "ldir"
    ldir.mkdir()
    vps.ok("cp", f"t1:{rdir / 'notes.txt'}", str(ldir))
    assert (ldir / "notes.txt").read_bytes() == b"notes\n"


def test_cp_recursive_upload_copies_the_tree(vps: Vps, t1: SSHD, tmp_path: Path) -> None:
    src = tmp_path / "site"
    _make_tree(src)
    dest = tmp_path / "remote" / "site-copy"
    dest.parent.mkdir()
    r = vps.run("cp", "-r", str(src), f"t1:{dest}")
    assert r.returncode == 0, _show(r)
    assert _tree(dest) == _tree(src)


def test_cp_recursive_download_copies_the_tree(vps: Vps, t1: SSHD, tmp_path: Path) -> None:
    src = tmp_path / "remote-site"
    _make_tree(src)
    dest = tmp_path / "local" / "site"
    dest.parent.mkdir()
    r = vps.run("cp", "-r", f"t1:{src}", str(dest))
    assert r.returncode == 0, _show(r)
    assert _tree(dest) == _tree(src)


def test_cp_directory_without_r_is_bad_input(vps: Vps, t1: SSHD, tmp_path: Path) -> None:
    src = tmp_path / "adir"
    src.mkdir()
    (src / "f").write_text("x")
    dest = tmp_path / "not-created"
    r = vps.run("cp", str(src), f"t1:{dest}")
    assert r.returncode == 2, _show(r)
    _one_error_line(r)
    assert not dest.exists()


def test_cp_missing_remote_file_fails_cleanly_and_is_audited(vps: Vps, t1: SSHD, tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such-file.txt"
    local = tmp_path / "should-not-appear.txt"
    r = vps.run("cp", f"t1:{missing}", str(local))
    assert r.returncode in (1, 2), _show(r)
    assert "such-file.txt" in _one_error_line(r)
    assert not local.exists()
    rows = vps.history("cp")
    assert rows and rows[0]["status"] != "ok" and rows[0]["server"] == "t1"


def test_cp_is_audited(vps: Vps, t1: SSHD, tmp_path: Path) -> None:
    src = tmp_path / "audited.txt"
    src.write_bytes(b"12345")
    dest = tmp_path / "audited-remote.txt"
    vps.ok("cp", str(src), f"t1:{dest}")
    row = _last(vps.history("cp"))
    assert row["source"] == "cp"
    assert row["server"] == "t1"
    assert row["status"] == "ok"
    assert row["user"] == ME
    assert str(dest) in (row["command"] or "")
    assert row["started_at"] and row["finished_at"]


def test_cp_bad_input_unknown_server_or_no_server(vps: Vps, tmp_path: Path) -> None:
    src = tmp_path / "f.txt"
    src.write_text("x")
    r = vps.run("cp", str(src), "nosuch:/tmp/f.txt", timeout=60)
    assert r.returncode == 2, _show(r)
    assert "nosuch" in _one_error_line(r)
    r = vps.run("cp", "nosuch:/etc/hostname", str(tmp_path / "g"), timeout=60)
    assert r.returncode == 2, _show(r)
    _one_error_line(r)
    assert not (tmp_path / "g").exists()
    # two local paths: that is plain cp's job
    r = vps.run("cp", str(src), str(tmp_path / "g.txt"), timeout=60)
    assert r.returncode == 2, _show(r)
    assert "Traceback" not in r.stderr.decode()
    assert not (tmp_path / "g.txt").exists()


def test_cp_on_a_terminal_shows_progress(vps: Vps, t1: SSHD, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    data = os.urandom(4 * 1024 * 1024)
    src.write_bytes(data)
    dest = tmp_path / "big-remote.bin"
    child = vps.spawn("cp", str(src), f"t1:{dest}", rows=24, cols=100)
    child.expect(pexpect.EOF, timeout=60)
    shown = child.before
    child.close()
    assert child.exitstatus == 0, shown
    assert dest.read_bytes() == data
    assert b"big.bin" in shown or b"%" in shown, shown


# --------------------------------------------------------------------------- 2. completion


@pytest.fixture
def fleet(vps: Vps) -> Vps:
    """Three servers with tags; no connection is made."""
    for name, tags in (("web1", ("web", "prod")), ("web2", ("web",)), ("db1", ("db", "prod"))):
        vps.ok("servers", "add", name, "--host", "127.0.0.1", "--port", "2222",
               *[a for t in tags for a in ("-t", t)])
    return vps


def _values(items: list[tuple[str, str]]) -> set[str]:
    return {v for _, v in items}


SERVER_CONTEXTS = [
    "vpsagent run -s",
    "vpsagent ask -s",
    "vpsagent test run plan.yaml -s",
    "vpsagent servers show",
    "vpsagent servers edit",
    "vpsagent servers remove",
    "vpsagent servers check",
    "vpsagent ssh",
]


def test_complete_server_names(fleet: Vps) -> None:
    for context in SERVER_CONTEXTS:
        values = _values(fleet.completions(f"{context} we"))
        assert {"web1", "web2"} <= values, (context, values)
        assert "db1" not in values, (context, values)  # filtered by the typed prefix
    values = _values(fleet.completions("vpsagent run -s "))
    assert {"web1", "web2", "db1"} <= values


def test_complete_cp_server_side(fleet: Vps) -> None:
    values = _values(fleet.completions("vpsagent cp d"))
    assert any(v == "db1" or v.startswith("db1:") for v in values), values
    assert not any(v.startswith("web") for v in values)


def test_complete_tags(fleet: Vps) -> None:
    cases = [
        ("vpsagent run -t ", {"web", "prod", "db"}, set()),
        ("vpsagent run -t p", {"prod"}, {"web", "db"}),
        ("vpsagent servers list -t w", {"web"}, {"prod", "db"}),
    ]
    for words, expected, absent in cases:
        values = _values(fleet.completions(words))
        assert expected <= values, (words, values)
        assert not (absent & values), (words, values)
        assert not ({"web1", "web2", "db1"} & values), (words, values)  # tags, not names


def test_complete_plan_files(vps: Vps, tmp_path: Path) -> None:
    work = tmp_path / "plans-here"
    work.mkdir()
    (work / "plan-a.yaml").write_text("name: a\nsteps: []\n")
    (work / "plan-b.yml").write_text("name: b\nsteps: []\n")
    (work / "plain-notes.txt").write_text("x")
    for command in ("test run", "test validate"):
        items = vps.completions(f"vpsagent {command} pl", cwd=work)
        kinds = {k for k, _ in items}
        values = _values(items)
        assert "file" in kinds or ({"plan-a.yaml", "plan-b.yml"} <= values
                                   and "plain-notes.txt" not in values), (command, items)


@pytest.fixture(scope="module")
def conversations(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Vps, list[str]]]:
    """Two stored `ask` conversations (the real SDK against the fake Messages API)."""
    root = tmp_path_factory.mktemp("conv")
    home = root / "userhome"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env.update({
        "VPSAGENT_HOME": str(root / "vh"), "DATABASE_URL": f"sqlite:///{root / 'vh' / 'data' / 'v.db'}",
        "VPSAGENT_SECRET": SECRET, "HOME": str(home), "TERM": "dumb",
    })
    v = Vps(root=root, env=env, home=home)
    with FakeAnthropicAPI() as api:
        api.always("All fine.")
        v.env.update({"ANTHROPIC_BASE_URL": api.url, "ANTHROPIC_API_KEY": FAKE_API_KEY})
        v.ok("ask", "-s", "local", "first question")
        v.ok("ask", "-s", "local", "second question")
    ids = [str(c["id"]) for c in v.json("conversations", "list")["data"]["conversations"]]
    assert len(ids) == 2
    yield v, ids


def test_complete_conversation_ids(conversations: tuple[Vps, list[str]]) -> None:
    v, ids = conversations
    for words in ("vpsagent conversations show ", "vpsagent conversations export ",
                  "vpsagent ask --conversation "):
        values = _values(v.completions(words))
        assert set(ids) <= values, (words, values)


def test_complete_zsh_and_fish_protocols(fleet: Vps) -> None:
    for shell in ("zsh", "fish"):
        r = fleet.complete("vpsagent ssh web", shell=shell)
        assert r.returncode == 0, _show(r)
        out = r.stdout.decode()
        assert "web1" in out and "web2" in out and "db1" not in out, (shell, out)


def test_completion_does_not_import_the_orm(fleet: Vps) -> None:
    r = fleet.complete("vpsagent run -s we", python_flags=("-X", "importtime"))
    assert r.returncode == 0, _show(r)
    assert b"web1" in r.stdout
    imported = r.stderr.decode()
    assert "sqlalchemy" not in imported and "sqlmodel" not in imported, \
        [ln for ln in imported.splitlines() if "sqla" in ln or "sqlmodel" in ln][:5]


def test_completion_on_a_fresh_home_is_empty_and_quiet(vps: Vps) -> None:
    r = vps.complete("vpsagent ssh ")
    assert r.returncode == 0, _show(r)
    assert b"Traceback" not in r.stderr
    values = {ln.partition(",")[2] for ln in r.stdout.decode().splitlines() if ln}
    assert values <= {"local", "local:"}


def test_completion_command_prints_the_scripts(vps: Vps) -> None:
    for shell, needle in (("bash", "complete"), ("zsh", "compdef"), ("fish", "complete")):
        r = vps.ok("completion", shell)
        script = r.stdout.decode()
        assert "_VPSAGENT_COMPLETE" in script, shell
        assert needle in script, shell
        if shell == "bash":
            chk = subprocess.run(["bash", "-n"], input=r.stdout, capture_output=True)
            assert chk.returncode == 0, chk.stderr


def test_completion_bash_script_completes_in_bash(fleet: Vps, tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    wrapper = bindir / "vpsagent"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} -m vpsagent \"$@\"\n")
    wrapper.chmod(0o755)
    script = fleet.ok("completion", "bash").stdout.decode()
    (tmp_path / "vpsagent.bash").write_text(script)
    driver = f"""
source {tmp_path / 'vpsagent.bash'}
fn=$(complete -p vpsagent | sed -n 's/.*-F \\([^ ]*\\).*/\\1/p')
COMP_WORDS=(vpsagent ssh we); COMP_CWORD=2; COMP_LINE='vpsagent ssh we'; COMP_POINT=${{#COMP_LINE}}
"$fn" vpsagent we ssh
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    env = dict(fleet.env, PATH=f"{bindir}{os.pathsep}{fleet.env.get('PATH', '')}")
    r = subprocess.run(["bash", "-c", driver], capture_output=True, env=env, timeout=60, cwd=tmp_path)
    assert r.returncode == 0, _show(r)
    got = set(r.stdout.decode().split())
    assert {"web1", "web2"} <= got and "db1" not in got, _show(r)


def test_completion_for_an_unknown_shell_is_exit_2(vps: Vps) -> None:
    r = vps.run("completion", "tcsh", timeout=60)
    assert r.returncode == 2, _show(r)
    assert r.stdout == b""
    assert b"Traceback" not in r.stderr
    assert b"tcsh" in r.stderr


# --------------------------------------------------------------------------- 3. servers import


def _realistic_ssh_config(vps: Vps, server: SSHD, tmp_path: Path) -> None:
    """~/.ssh/config as people have it: Includes, a Match block, ProxyJump in both spellings."""
    ssh = vps.dot_ssh
    shutil.copyfile(server.client_key_path, ssh / "id_test")
    (ssh / "id_test").chmod(0o600)
    shutil.copyfile(server.client_key_path, ssh / "id_ed25519")  # what plain ssh would try
    (ssh / "id_ed25519").chmod(0o600)
    u, p = server.user, server.port
    (ssh / "conf.d").mkdir()
    (ssh / "conf.d" / "10-web.conf").write_text(
        f"Host web1\n    HostName 127.0.0.5\n    Port {p}\n    User {u}\n    IdentityFile ~/.ssh/id_test\n")
    (ssh / "conf.d" / "20-web.conf").write_text(
        f"Host web2\n    HostName 127.0.0.7\n    Port {p}\n    User {u}\n    IdentityFile ~/.ssh/id_test\n")
    (ssh / "conf.d" / "notes.txt").write_text("Host ignored1\n    HostName 127.0.0.8\n")
    (ssh / "more_hosts").write_text(f"Host more1\n    HostName 127.0.0.8\n    Port {p}\n    User {u}\n")
    extra = tmp_path / "elsewhere" / "extra.conf"
    extra.parent.mkdir()
    extra.write_text(f"Host extra1\n    HostName 127.0.0.8\n    Port {p}\n    User {u}\n")
    (ssh / "config").write_text(f"""# personal ssh config
Include conf.d/*.conf
Include more_hosts
Include {extra}
Include nothing-here/*.conf

Host bastion
    HostName 127.0.0.1
    Port {p}
    User {u}
    IdentityFile ~/.ssh/id_test

Match exec "true"
    User matched-user
    Port 1

Host app1
    HostName 127.0.0.2
    Port {p}
    User {u}
    IdentityFile ~/.ssh/id_test
    ProxyJump bastion

Host db1
    HostName 127.0.0.3
    Port {p}
    User {u}
    IdentityFile ~/.ssh/id_test
    ProxyJump {u}@127.0.0.1:{p}

Host cache1
    HostName 127.0.0.4
    Port {p}
    User {u}
    IdentityFile ~/.ssh/id_test
    ProxyJump {u}@127.0.0.6:{p}

Match host *.corp.example
    User corp

Host *.internal
    User internal

Host *
    ServerAliveInterval 30
""")


EXPECTED_IMPORTS = {"bastion", "app1", "db1", "cache1", "web1", "web2", "more1", "extra1"}


def test_import_realistic_config_skips_match_with_a_warning(vps: Vps, sshd: SSHD, tmp_path: Path) -> None:
    _realistic_ssh_config(vps, sshd, tmp_path)
    r = vps.run("servers", "import", timeout=120)
    assert r.returncode == 0, _show(r)
    err = r.stderr.decode()
    assert "Traceback" not in err
    assert any("warning" in ln.lower() and "Match" in ln for ln in err.splitlines()), err
    names = {s["name"] for s in vps.servers()}
    assert EXPECTED_IMPORTS <= names
    assert not ({"ignored1", "*", "*.internal", "*.corp.example"} & names)
    app1 = vps.server("app1")
    assert (app1["host"], app1["port"], app1["user"]) == ("127.0.0.2", sshd.port, sshd.user)  # no Match values
    assert app1["jump"] == "bastion"
    assert app1["has_key"] is True


def test_import_json_carries_the_match_warning(vps: Vps, sshd: SSHD, tmp_path: Path) -> None:
    _realistic_ssh_config(vps, sshd, tmp_path)
    doc = vps.json("servers", "import")
    assert doc["ok"] is True
    assert any("Match" in str(w) for w in doc["data"]["warnings"]), doc["data"]["warnings"]
    added = {s["name"] for s in doc["data"]["added"]}
    assert {"bastion", "app1", "db1", "web1", "extra1"} <= added


def test_import_follows_include_globs_relative_to_dot_ssh(vps: Vps, sshd: SSHD, tmp_path: Path) -> None:
    _realistic_ssh_config(vps, sshd, tmp_path)
    vps.ok("servers", "import")
    web1, web2 = vps.server("web1"), vps.server("web2")
    assert (web1["host"], web1["port"], web1["user"]) == ("127.0.0.5", sshd.port, sshd.user)
    assert web1["has_key"] is True
    assert web2["host"] == "127.0.0.7"
    assert vps.server("more1")["host"] == "127.0.0.8"
    assert vps.server("extra1")["host"] == "127.0.0.8"


def test_import_include_is_relative_to_dot_ssh_for_another_config_file(vps: Vps, sshd: SSHD,
                                                                     tmp_path: Path) -> None:
    (vps.dot_ssh / "inc.conf").write_text(f"Host fromdotssh\n    HostName 127.0.0.3\n    Port {sshd.port}\n")
    elsewhere = tmp_path / "cfgdir"
    elsewhere.mkdir()
    (elsewhere / "inc.conf").write_text("Host wrongplace\n    HostName 127.0.0.4\n")
    cfg = elsewhere / "custom_config"
    cfg.write_text("Include inc.conf\n")
    vps.ok("servers", "import", "--ssh-config", str(cfg))
    names = {s["name"] for s in vps.servers()}
    assert "fromdotssh" in names and "wrongplace" not in names


def test_import_self_include_terminates(vps: Vps, tmp_path: Path) -> None:
    (vps.dot_ssh / "config").write_text("Include config\nHost loop1\n    HostName 127.0.0.2\n")
    r = vps.run("servers", "import", timeout=60)
    assert r.returncode in (0, 2), _show(r)
    assert b"Traceback" not in r.stderr


def test_import_proxyjump_spec_matches_or_creates_the_jump_host(vps: Vps, sshd: SSHD, tmp_path: Path) -> None:
    _realistic_ssh_config(vps, sshd, tmp_path)
    vps.ok("servers", "import")
    servers = vps.servers()
    triple = {(s["host"], s["port"], s["user"]): s["name"] for s in servers}

    db1 = vps.server("db1")
    assert db1["jump"] is not None
    jump = vps.server(db1["jump"])
    assert (jump["host"], jump["port"], jump["user"]) == ("127.0.0.1", sshd.port, sshd.user)
    same = [s for s in servers if (s["host"], s["port"], s["user"]) == ("127.0.0.1", sshd.port, sshd.user)]
    assert len(same) == 1  # matched bastion, not a duplicate of it

    cache1 = vps.server("cache1")
    assert cache1["jump"] is not None
    created = vps.server(cache1["jump"])
    assert (created["host"], created["port"], created["user"]) == ("127.0.0.6", sshd.port, sshd.user)
    assert triple[("127.0.0.6", sshd.port, sshd.user)] == cache1["jump"]

    # importing again adds nothing and creates no second jump host
    vps.ok("servers", "import")
    assert len(vps.servers()) == len(servers)


def test_import_proxyjump_spec_matches_an_existing_server(vps: Vps, tmp_path: Path) -> None:
    vps.ok("servers", "add", "gw", "--host", "127.0.0.9", "--port", "2201", "--user", "jumper")
    cfg = tmp_path / "cfg"
    cfg.write_text("Host inner\n    HostName 10.1.2.3\n    User app\n    ProxyJump jumper@127.0.0.9:2201\n")
    doc = vps.json("servers", "import", "--ssh-config", str(cfg))
    assert [s["name"] for s in doc["data"]["added"]] == ["inner"]
    assert vps.server("inner")["jump"] == "gw"


def test_import_then_run_through_both_kinds_of_jump(vps: Vps, sshd: SSHD, tmp_path: Path) -> None:
    _realistic_ssh_config(vps, sshd, tmp_path)
    vps.ok("servers", "import")
    for name in ("app1", "db1", "cache1"):
        r = vps.run("run", "-s", name, "echo via-$((40+2))", timeout=120)
        assert r.returncode == 0, _show(r)
        assert r.stdout == b"via-42\n"
    rows = vps.history("run")
    assert {row["server"] for row in rows} == {"app1", "db1", "cache1"}
    assert all(row["status"] == "ok" for row in rows)
