"""Interactive SSH: a session between a local terminal and a remote PTY, and local port
forwarding (`ssh -L`).

Nothing here knows about terminals' modes or signals: the caller (the CLI) puts its
terminal in raw mode, so Ctrl-C and Ctrl-D are plain bytes that go to the remote PTY like
any other key, and sets `Terminal.resized` on SIGWINCH. Typed bytes are forwarded as they
are — never parsed, gated or recorded.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from vpsagent import errors
from vpsagent.remote.ssh import PID_MARKER, _PidLine, _send_signal

if TYPE_CHECKING:
    import paramiko

READ_CHUNK = 32 * 1024
# How often the loop looks at the resize flag when nothing else happens (SIGWINCH
# interrupts select, but Python retries it; this bounds how late a resize is sent).
TICK_S = 0.1


@dataclass
class Terminal:
    """The local end of a session, given by the caller."""

    stdin_fd: int | None  # what is typed (None: nothing is sent; the remote side gets EOF)
    write_out: Callable[[bytes], None]
    write_err: Callable[[bytes], None]
    size: Callable[[], tuple[int, int]] | None = None  # (columns, rows) of a local terminal; None: no PTY
    term: str = "xterm-256color"
    resized: threading.Event = field(default_factory=threading.Event)
    # the terminal in raw mode while the session runs (so notes before it print normally)
    raw: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext


class Recorder(Protocol):
    """Sees what the session shows (never what is typed)."""

    def output(self, data: bytes) -> None: ...

    def resize(self, columns: int, rows: int) -> None: ...


@dataclass
class SessionEnd:
    exit_status: int | None  # None: the channel closed without one
    bytes_out: int
    connection_alive: bool = True  # False: it closed because the connection dropped


class _Session:
    def __init__(self, chan: paramiko.Channel, terminal: Terminal, recorder: Recorder | None) -> None:
        self.chan = chan
        self.t = terminal
        self.recorder = recorder
        self.stdin_open = terminal.stdin_fd is not None
        self.bytes_out = 0
        self.pid_line: _PidLine | None = None

    def pump_remote(self) -> None:
        while self.chan.recv_ready():
            data = self.chan.recv(READ_CHUNK)
            if not data:
                break
            self.bytes_out += len(data)
            self.t.write_out(data)
            if self.recorder is not None:
                self.recorder.output(data)
        while self.chan.recv_stderr_ready():
            data = self.chan.recv_stderr(READ_CHUNK)
            if not data:
                break
            if self.pid_line is not None:
                data = self.pid_line.filter(data)
            self.bytes_out += len(data)
            self.t.write_err(data)
            if self.recorder is not None:
                self.recorder.output(data)

    def pump_local(self) -> None:
        assert self.t.stdin_fd is not None
        data = os.read(self.t.stdin_fd, READ_CHUNK)
        if data:
            self.chan.sendall(data)
            return
        # local EOF (a pipe ran dry): the remote side sees EOF too; output still flows
        self.stdin_open = False
        with contextlib.suppress(OSError, EOFError):
            self.chan.shutdown_write()

    def resize(self) -> None:
        self.t.resized.clear()
        if self.t.size is None:
            return
        columns, rows = self.t.size()
        with contextlib.suppress(OSError, EOFError):
            self.chan.resize_pty(width=columns, height=rows)
        if self.recorder is not None:
            self.recorder.resize(columns, rows)

    def done(self) -> bool:
        return self.chan.exit_status_ready() and not self.chan.recv_ready() and not self.chan.recv_stderr_ready()


def run_session(chan: paramiko.Channel, terminal: Terminal, command: str | None = None,
                recorder: Recorder | None = None) -> SessionEnd:
    """A shell (or `command`) on `chan`, with a PTY when the terminal has a size, until it ends."""
    if terminal.size is not None:
        columns, rows = terminal.size()
        chan.get_pty(term=terminal.term, width=columns, height=rows)
    s = _Session(chan, terminal, recorder)
    if command is None:
        chan.invoke_shell()
    elif terminal.size is None:
        # The shell's pid first on stderr (taken off again): without a PTY, Ctrl-C stops
        # the command by killing its process group, as SSHHost.run does.
        s.pid_line = _PidLine()
        chan.exec_command(f"printf '{PID_MARKER.decode()}%d\\n' $$ >&2\n{command}")
    else:
        chan.exec_command(command)
    if not s.stdin_open:
        with contextlib.suppress(OSError, EOFError):
            chan.shutdown_write()
    try:
        with terminal.raw():
            _loop(s)
    except KeyboardInterrupt:
        # Only without a PTY does Ctrl-C reach us (with one it is a byte for the server):
        # stop the remote command too rather than leave it running.
        _interrupt(s)
        raise
    status = chan.exit_status if chan.exit_status_ready() else None
    transport = chan.get_transport()
    return SessionEnd(exit_status=None if status == -1 else status, bytes_out=s.bytes_out,
                      connection_alive=transport is not None and transport.is_active())


def _await_pid(s: _Session, wait_s: float = 2.0) -> int | None:
    """The remote shell's pid, reading stderr for it if Ctrl-C came before it was read."""
    if s.pid_line is None:
        return None
    deadline = time.monotonic() + wait_s
    while not s.pid_line.done and time.monotonic() < deadline and not s.chan.closed:
        if s.chan.recv_stderr_ready():
            rest = s.pid_line.filter(s.chan.recv_stderr(READ_CHUNK))
            if rest:
                s.t.write_err(rest)
        else:
            time.sleep(0.01)
    return s.pid_line.pid


def _interrupt(s: _Session) -> None:
    """SIGINT to the remote command's process group: sshd's `signal` request where it
    honours it, and `kill` on a second channel (sshd refuses the request for root logins)."""
    with contextlib.suppress(Exception):
        _send_signal(s.chan, "INT")
    with contextlib.suppress(Exception):
        transport = s.chan.get_transport()
        pid = _await_pid(s)
        if pid is not None and transport is not None and transport.is_active():
            c = transport.open_session(timeout=5)
            c.exec_command(f"kill -s INT -- -{pid} 2>/dev/null")
            c.shutdown_write()
            c.status_event.wait(5)
            c.close()


def _loop(s: _Session) -> None:
    chan, terminal = s.chan, s.t
    chan_fd = chan.fileno()  # readable when either stream has data, or on EOF/close
    while not s.done():
        readers = [chan_fd]
        if s.stdin_open and terminal.stdin_fd is not None:
            readers.append(terminal.stdin_fd)
        ready, _, _ = select.select(readers, [], [], TICK_S)
        if terminal.resized.is_set():  # before what was typed after the resize
            s.resize()
        if chan_fd in ready or chan.recv_ready() or chan.recv_stderr_ready():
            s.pump_remote()
        if s.stdin_open and terminal.stdin_fd in ready:
            s.pump_local()
        if chan.closed and not chan.exit_status_ready():
            break  # the connection went away under the session
    s.pump_remote()


# -- local port forwarding -------------------------------------------------------------------

@dataclass(frozen=True)
class Forward:
    """`-L [bind_address:]port:host:hostport`: connections to bind:port here reach host:hostport
    as seen from the server."""

    bind_host: str
    bind_port: int
    dest_host: str
    dest_port: int

    def __str__(self) -> str:
        bind = f"[{self.bind_host}]" if ":" in self.bind_host else self.bind_host
        dest = f"[{self.dest_host}]" if ":" in self.dest_host else self.dest_host
        return f"{bind}:{self.bind_port}:{dest}:{self.dest_port}"


def _splice(sock: socket.socket, chan: paramiko.Channel) -> None:
    """Copy both ways until either side closes."""
    chan_fd, sock_fd = chan.fileno(), sock.fileno()
    try:
        while True:
            ready, _, _ = select.select([sock_fd, chan_fd], [], [])
            if sock_fd in ready:
                data = sock.recv(READ_CHUNK)
                if not data:
                    break
                chan.sendall(data)
            if chan_fd in ready:
                data = chan.recv(READ_CHUNK)
                if not data:
                    break
                sock.sendall(data)
    except (OSError, EOFError):
        pass
    finally:
        with contextlib.suppress(OSError, EOFError):
            chan.close()
        with contextlib.suppress(OSError):
            sock.close()


class LocalForwarder:
    """Listens on `forward.bind_host:bind_port` and opens a `direct-tcpip` channel per connection."""

    def __init__(self, transport: paramiko.Transport, forward: Forward,
                 on_error: Callable[[str], None] | None = None) -> None:
        self.transport = transport
        self.forward = forward
        self.on_error = on_error
        self._stop = threading.Event()
        try:
            self.listener = socket.create_server((forward.bind_host, forward.bind_port),
                                                 family=socket.AF_INET6 if ":" in forward.bind_host else socket.AF_INET)
        except OSError as exc:
            raise errors.UsageError(f"-L {forward}: cannot listen on {forward.bind_host}:{forward.bind_port}: "
                                    f"{exc.strerror or exc}") from None
        self.listener.settimeout(TICK_S * 2)
        self._thread = threading.Thread(target=self._accept, name=f"forward {forward}", daemon=True)

    def start(self) -> LocalForwarder:
        self._thread.start()
        return self

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                sock, peer = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(None)
            f = self.forward
            try:
                chan = self.transport.open_channel("direct-tcpip", (f.dest_host, f.dest_port), peer[:2])
            except Exception as exc:  # noqa: BLE001 - one refused connection must not end the forwarding
                if self.on_error is not None:
                    self.on_error(f"-L {f}: the server could not connect to {f.dest_host}:{f.dest_port}: {exc}")
                sock.close()
                continue
            threading.Thread(target=_splice, args=(sock, chan), daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self.listener.close()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
