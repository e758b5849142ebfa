"""`vpsagent ssh` against the real sshd: a real PTY (driven through a local pseudo-terminal,
as a user's terminal would), window size, Ctrl-C and Ctrl-D, commands and their exit
status, asciicast recording, -L forwarding, and the audit row of every session."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

WAIT_S = 30.0  # a bound against hangs, never a timing assertion


def _set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class PtySession:
    """`vpsagent ARGS` with its stdin, stdout and stderr on a pseudo-terminal."""

    def __init__(self, args: list[str], rows: int = 24, cols: int = 100) -> None:
        self.master, slave = pty.openpty()
        _set_size(slave, rows, cols)
        self.proc = subprocess.Popen([sys.executable, "-m", "vpsagent", *args], stdin=slave, stdout=slave,
                                     stderr=slave, start_new_session=True, env=dict(os.environ, TERM="xterm"))
        os.close(slave)
        self.seen = b""
        self.pos = 0  # expect() looks only after the previous match

    def ready(self) -> None:
        """Wait for the remote shell (our terminal is in raw mode by then) and set a prompt
        that `prompt()` waits for."""
        self.send(b"PS1='vps''agent> '; echo rea''dy-$((40+2))\r")
        self.expect(b"ready-42")
        self.prompt()

    def prompt(self) -> None:
        """Wait for the remote shell to read a line (keys sent before it may be taken as typeahead)."""
        self.expect(b"vpsagent> ")

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def expect(self, needle: bytes) -> bytes:
        deadline = time.monotonic() + WAIT_S
        while needle not in self.seen[self.pos:]:
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} never appeared; saw {self.seen[-2000:]!r}")
            chunk = self._read()
            if not chunk and self.proc.poll() is not None:
                raise AssertionError(f"exited {self.proc.returncode} before {needle!r}; saw {self.seen[-2000:]!r}")
            self.seen += chunk
        self.pos = self.seen.index(needle, self.pos) + len(needle)
        return self.seen

    def expect_re(self, pattern: bytes) -> re.Match[bytes]:
        rx = re.compile(pattern)
        deadline = time.monotonic() + WAIT_S
        while (m := rx.search(self.seen, self.pos)) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} never appeared; saw {self.seen[-2000:]!r}")
            chunk = self._read()
            if not chunk and self.proc.poll() is not None:
                raise AssertionError(f"exited {self.proc.returncode}; saw {self.seen[-2000:]!r}")
            self.seen += chunk
        self.pos = m.end()
        return m

    def _read(self) -> bytes:
        ready, _, _ = select.select([self.master], [], [], 0.2)
        if not ready:
            return b""
        try:
            return os.read(self.master, 65536)
        except OSError:  # the child closed the terminal
            return b""

    def resize(self, rows: int, cols: int) -> None:
        _set_size(self.master, rows, cols)
        self.proc.send_signal(signal.SIGWINCH)  # the kernel would, were it our controlling terminal

    def wait(self) -> int:
        # keep draining, so the child never blocks on a full terminal buffer
        deadline = time.monotonic() + WAIT_S
        while self.proc.poll() is None and time.monotonic() < deadline:
            self.seen += self._read()
        if self.proc.poll() is None:
            raise AssertionError(f"still running; saw {self.seen[-2000:]!r}")
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


@pytest.fixture
def pty_session(home) -> Iterator:  # noqa: ANN001
    started: list[PtySession] = []

    def start(*args: str, rows: int = 24, cols: int = 100) -> PtySession:
        s = PtySession(list(args), rows, cols)
        started.append(s)
        return s

    yield start
    for s in started:
        s.close()


def _ssh_rows(cli) -> list[dict]:  # noqa: ANN001
    doc = cli("history", "--source", "ssh", "--json").json()
    return doc["data"]["entries"]


def test_interactive_shell_has_a_pty_with_the_window_size_and_passes_the_exit_status(
        pty_session, ssh_server, cli) -> None:
    s = pty_session("ssh", "t1", rows=24, cols=100)
    s.send(b"stty size; tty\r")
    s.expect(b"24 100")
    s.expect(b"/dev/pts/")
    s.send(b"exit 7\r")
    assert s.wait() == 7
    (row,) = _ssh_rows(cli)
    assert row["server"] == "t1" and row["exit_code"] == 7 and row["status"] == "failed"
    assert "interactive" in row["command"] and row["user"]
    detail = cli("history", "show", str(row["id"]), "--json").json()["data"]["entry"]
    assert "not parsed" in detail["decision_reason"]


def test_window_size_follows_the_terminal_and_is_recorded(pty_session, ssh_server, tmp_path: Path) -> None:
    cast = tmp_path / "session.cast"
    s = pty_session("ssh", "t1", "--record", str(cast), rows=24, cols=80)
    s.ready()
    s.resize(30, 120)
    for i in range(20):  # the signal and the typed line travel separately: ask until it arrived
        s.send(f"echo S{i}-$(stty size | tr ' ' x)\r".encode())
        if s.expect_re(rb"S%d-(\d+)x(\d+)" % i).groups() == (b"30", b"120"):
            break
    else:
        raise AssertionError(f"the remote PTY never saw 30x120: {s.seen[-500:]!r}")
    s.send(b"exit\r")
    assert s.wait() == 0
    lines = cast.read_text().splitlines()
    header = json.loads(lines[0])
    assert (header["version"], header["width"], header["height"]) == (2, 80, 24)
    events = [json.loads(x) for x in lines[1:]]
    assert all(isinstance(e[0], float | int) and e[1] in ("o", "r") for e in events)
    assert [e[2] for e in events if e[1] == "r"] == ["120x30"]
    shown = "".join(e[2] for e in events if e[1] == "o")
    assert "ready-42" in shown and "30x120" in shown
    assert (cast.stat().st_mode & 0o777) == 0o600


def test_ctrl_c_and_ctrl_d_go_to_the_server(pty_session, ssh_server, cli) -> None:
    s = pty_session("ssh", "t1")
    s.ready()
    s.send(b"sleep 120; echo not-inter''rupted\r")
    s.expect(b"sleep 120")  # the remote terminal's echo
    time.sleep(0.5)  # let the remote shell start sleep (an ordering wait, not a timing check)
    s.send(b"\x03")  # Ctrl-C: the remote sleep is interrupted, our process carries on
    s.send(b"echo after-$((1+1))\r")
    s.expect(b"after-2")
    s.prompt()
    assert b"not-interrupted" not in s.seen
    assert s.proc.poll() is None
    s.send(b"\x04")  # Ctrl-D: the remote shell ends, and so does the session
    assert s.wait() == 0
    (row,) = _ssh_rows(cli)
    assert row["status"] == "ok" and row["exit_code"] == 0


def test_a_command_passes_its_exit_status_streams_and_stdin(run_vpsagent, ssh_server, cli) -> None:
    p = run_vpsagent("ssh", "t1", "--", "echo out; echo err >&2; exit 3")
    assert p.returncode == 3, p.stderr
    assert p.stdout == b"out\n" and p.stderr == b"err\n"
    p = run_vpsagent("ssh", "t1", "--", "tr", "a-z", "A-Z", input="piped in\n")
    assert (p.returncode, p.stdout) == (0, b"PIPED IN\n"), p.stderr
    rows = _ssh_rows(cli)
    assert {(r["command"], r["exit_code"]) for r in rows} >= {
        ("ssh -- echo out; echo err >&2; exit 3", 3), ("ssh -- tr a-z A-Z", 0)}
    assert all(r["user"] for r in rows)  # who


def test_a_command_killed_by_a_signal_exits_255_not_unreachable(run_vpsagent, ssh_server, cli) -> None:
    p = run_vpsagent("ssh", "t1", "--", "kill -9 $$")
    assert p.returncode == 255, p.stderr
    (row,) = _ssh_rows(cli)
    assert row["status"] == "failed" and "signal" in row["error"]


def test_ctrl_c_without_a_terminal_stops_the_remote_command(ssh_server, home, cli) -> None:  # noqa: ANN001
    p = subprocess.Popen([sys.executable, "-m", "vpsagent", "ssh", "t1", "--", "echo started; exec sleep 7771"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert p.stdout.readline() == b"started\n"
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=WAIT_S) == 130
    finally:
        if p.poll() is None:
            p.kill()
    deadline = time.monotonic() + WAIT_S
    try:
        while subprocess.run(["pgrep", "-f", "sleep 7771"], capture_output=True).returncode == 0:
            assert time.monotonic() < deadline, "the remote command outlived the session"
            time.sleep(0.1)
    finally:  # on failure, the sleep this test started (the test sshd is this machine)
        found = subprocess.run(["pgrep", "-f", "sleep 7771"], capture_output=True, text=True).stdout
        for pid in found.split():
            os.kill(int(pid), signal.SIGKILL)
    (row,) = _ssh_rows(cli)
    assert row["status"] == "interrupted"


def _echo_server() -> tuple[socket.socket, int]:
    srv = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                data = conn.recv(1024)
                conn.sendall(b"echo:" + data)

    threading.Thread(target=serve, daemon=True).start()
    return srv, srv.getsockname()[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_local_port_forwarding_until_ctrl_c(ssh_server, home, cli) -> None:  # noqa: ANN001
    srv, target = _echo_server()
    local = _free_port()
    p = subprocess.Popen([sys.executable, "-m", "vpsagent", "ssh", "t1", "-N", "-L", f"{local}:127.0.0.1:{target}"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = p.stderr.readline()  # the forward is listening once it says so
        assert b"forwarding 127.0.0.1:%d" % local in line, line
        for word in (b"one", b"two"):
            with socket.create_connection(("127.0.0.1", local), timeout=WAIT_S) as c:
                c.sendall(word)
                assert c.recv(1024) == b"echo:" + word
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=WAIT_S) == 0
    finally:
        if p.poll() is None:
            p.kill()
        srv.close()
    (row,) = _ssh_rows(cli)
    assert row["command"] == f"ssh -N -L 127.0.0.1:{local}:127.0.0.1:{target}" and row["status"] == "ok"


@pytest.mark.parametrize(("args", "needle"), [
    (["ssh", "local"], "this machine"),
    (["ssh", "nosuch"], "unknown server"),
    (["ssh", "t1", "-N"], "give -L too"),
    (["ssh", "t1", "-L", "nonsense"], "expected [bind_address:]port:host:hostport"),
    (["ssh", "t1", "-N", "-L", "8080:localhost:80", "--", "uptime"], "either -N or a command"),
    (["ssh", "t1", "--json", "--", "uptime"], "no --json"),
])
def test_bad_input_is_one_line_and_exit_2(cli, ssh_server, args, needle) -> None:  # noqa: ANN001
    r = cli(*args)
    assert r.exit_code == 2, (r.stdout, r.stderr)
    assert needle in r.stderr + r.stdout and "Traceback" not in r.stderr


def test_unreachable_server_exits_5_and_is_audited(cli) -> None:
    assert cli("servers", "add", "gone", "--host", "127.0.0.1", "--port", str(_free_port())).exit_code == 0
    r = cli("ssh", "gone", "--", "true")
    assert r.exit_code == 5, r.stderr
    assert r.stderr.count("\n") == 1 and "refused" in r.stderr
    (row,) = _ssh_rows(cli)
    assert row["status"] == "unreachable"
