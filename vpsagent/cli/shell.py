"""`vpsagent ssh` and `vpsagent cp`: a session on a server and copying files, with the
stored credentials and the pinned host key."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

from vpsagent.cli._common import App, pass_app

if TYPE_CHECKING:
    from vpsagent.remote.interactive import Terminal


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _writer(stream: TextIO, fd: int) -> Callable[[bytes], None]:
    """Bytes to a standard stream: its fd when it is the real one (raw, unbuffered), else its
    binary buffer (click's test runner)."""
    try:
        if stream.fileno() == fd:
            stream.flush()
            return lambda data: _write_all(fd, data)
    except (OSError, ValueError):
        pass
    buffer = stream.buffer

    def write(data: bytes) -> None:
        buffer.write(data)
        buffer.flush()

    return write


def _stdin_fd() -> int | None:
    try:
        return sys.stdin.fileno() if sys.stdin is not None else None
    except (OSError, ValueError, io.UnsupportedOperation):
        return None  # no real stdin (click's test runner): the remote side gets EOF


def _terminal(want_pty: bool) -> Terminal:
    from vpsagent.remote.interactive import Terminal

    size = None
    if want_pty:
        def size() -> tuple[int, int]:
            try:
                cols, rows = os.get_terminal_size(sys.stdin.fileno())
            except OSError:
                cols, rows = 80, 24
            return cols, rows

    terminal = Terminal(stdin_fd=_stdin_fd(), write_out=_writer(sys.stdout, 1), write_err=_writer(sys.stderr, 2),
                        size=size, term=os.environ.get("TERM") or "xterm-256color")
    terminal.raw = lambda: _raw_terminal(terminal)
    return terminal


@contextlib.contextmanager
def _raw_terminal(terminal: Terminal) -> Iterator[None]:
    """The local terminal in raw mode (keys, Ctrl-C and Ctrl-D go to the server as bytes) and
    SIGWINCH telling the session to resize; both undone on the way out."""
    import signal
    import termios
    import tty

    fd = terminal.stdin_fd
    if terminal.size is None or fd is None or not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    previous = signal.signal(signal.SIGWINCH, lambda _sig, _frame: terminal.resized.set())
    tty.setraw(fd, termios.TCSADRAIN)  # not the default TCSAFLUSH: keep what was typed ahead
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        signal.signal(signal.SIGWINCH, previous)


@click.command("ssh")
@click.argument("name", metavar="NAME")
@click.argument("command", nargs=-1, metavar="[-- COMMAND...]")
@click.option("-L", "forwards", multiple=True, metavar="[BIND:]PORT:HOST:HOSTPORT",
              help="Forward local PORT to HOST:HOSTPORT as seen from the server (repeatable).")
@click.option("-N", "no_command", is_flag=True, help="Run nothing, only forward ports (until Ctrl-C).")
@click.option("-t", "force_pty", is_flag=True, help="A terminal (PTY) for COMMAND too, e.g. for `top`.")
@click.option("--record", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE",
              help="Write what the session shows to FILE as an asciicast v2 recording (mode 0600).")
@pass_app
def ssh(app: App, name: str, command: tuple[str, ...], forwards: tuple[str, ...], no_command: bool,
        force_pty: bool, record: Path | None) -> int:
    """Open a shell on server NAME, or run COMMAND there; exits with the remote exit status.

    Uses the stored (encrypted) credentials and the pinned host key, so the key file
    need not exist here. A shell on a terminal gets a PTY with your window size; Ctrl-C
    and Ctrl-D go to the server. A command gets no PTY unless -t is given, and stdin is
    passed to it. The session's start, end, exit status and who ran it are written to
    the audit log (`vpsagent history --source ssh`); the keystrokes typed in it are NOT
    parsed, gated by the safety rules, or recorded in the log.

    \b
    Examples:
      vpsagent ssh web1
      vpsagent ssh web1 -- systemctl status nginx
      vpsagent ssh web1 --record session.cast     # play it with `asciinema play`
      vpsagent ssh db1 -N -L 5433:localhost:5432  # forward a port until Ctrl-C
    """
    from vpsagent.errors import UsageError
    from vpsagent.services.shell import SessionRequest, ssh_session

    if app.out.json_mode:
        raise UsageError("ssh has no --json: its output is the session's "
                         "(for a command's result as JSON: vpsagent run -s NAME --json CMD)")
    req = SessionRequest(server=name, command=" ".join(command) if command else None, forwards=forwards,
                         no_command=no_command, record=record)
    stdin_tty = _stdin_fd() is not None and sys.stdin.isatty()
    terminal = _terminal(want_pty=stdin_tty and not no_command and (req.command is None or force_pty))
    if record is not None and terminal.size is None and not no_command:
        app.out.warn("--record without a terminal: the recording is 80x24")
    result = ssh_session(app.ctx, req, terminal, on_forward_error=app.out.warn)
    return result.exit_status or 0


@click.command("cp")
@click.argument("source", metavar="SRC")
@click.argument("destination", metavar="DEST")
@click.option("-r", "--recursive", is_flag=True, help="Copy directories and everything in them.")
@pass_app
def cp(app: App, source: str, destination: str, recursive: bool) -> int:
    """Copy a file (or with -r a directory) to or from a server over SFTP.

    One side is NAME:path on a server (relative paths and ~/ are in the login
    directory), the other a path here; a local path with a colon is written ./a:b.
    As with cp and scp, a file copied onto an existing directory lands in it under its
    own name, and permission bits are kept. A progress bar shows on a terminal. Each
    copy is written to the audit log (`vpsagent history --source cp`).

    \b
    Examples:
      vpsagent cp app.tar.gz web1:/tmp/
      vpsagent cp web1:/var/log/nginx/error.log .
      vpsagent cp -r web1:/etc/nginx ./nginx-web1
    """
    from vpsagent.render.transfer import CopyProgress, render_copy
    from vpsagent.services.copy import copy_files

    with CopyProgress(app.out) as bar:
        result = copy_files(app.ctx, source, destination, recursive=recursive, on_progress=bar.step,
                            on_plan=bar.plan)
    return render_copy(app.out, result)
