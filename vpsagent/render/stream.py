"""Output that streams while a command runs: server output as it arrives, one summary after.

`run` on one server passes its output through unchanged; on several it prefixes each
complete line with the server name, keeping every server's partial line apart, and makes
it inert first (escape sequences could redraw the screen), on a terminal or a pipe alike:
only one server's output, asked for as it is, passes unchanged.
"""

from __future__ import annotations

import sys
import threading
from typing import IO

from vpsagent.outcomes import CommandStatus
from vpsagent.redact import inert as inert  # re-exported: renderers import it from here
from vpsagent.wording import about, plural


def _binary(which: str) -> IO[bytes]:
    return (sys.stdout if which == "stdout" else sys.stderr).buffer


class Prefixer:
    """Writes complete lines as `server | line`, keeping each server's partial line apart."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.lock = threading.Lock()
        self.partial: dict[tuple[str, str], bytes] = {}
        self.broken = False  # the reader of our stdout went away

    def write(self, server: str, which: str, chunk: bytes) -> None:
        key = (server, which)
        data = self.partial.pop(key, b"") + chunk
        *lines, rest = data.split(b"\n")
        if rest:
            self.partial[key] = rest
        if not lines:
            return
        prefix = f"{server:<{self.width}} | ".encode()
        out = b"".join(prefix + _inert_line(ln, which) + b"\n" for ln in lines)
        with self.lock:
            if self.broken and which == "stdout":
                raise BrokenPipeError("stdout was closed")
            s = _binary(which)
            try:
                s.write(out)
                s.flush()
            except BrokenPipeError:
                self.broken = True
                raise

    def flush(self, server: str) -> None:
        for which in ("stdout", "stderr"):
            rest = self.partial.pop((server, which), b"")
            if rest:
                self.write(server, which, rest + b"\n")


def _inert_line(line: bytes, which: str) -> bytes:
    # Prefixed lines from many servers are a listing for people (on a terminal now, or from
    # a log file later), never the raw bytes: only one server's `run` passes those through
    return inert(line.decode("utf-8", "replace")).encode()


def raw_writer(server: str, which: str, chunk: bytes) -> None:
    """One server's output, unchanged, as it arrives."""
    stream = _binary(which)
    stream.write(chunk)
    stream.flush()


# How each outcome is counted in the summary line, in this order.
SUMMARY_ORDER = (CommandStatus.OK, CommandStatus.FAILED, CommandStatus.TIMEOUT, CommandStatus.UNREACHABLE,
                 CommandStatus.CONNECTION_LOST, CommandStatus.ERROR, CommandStatus.INTERRUPTED,
                 CommandStatus.SKIPPED)


def status_line(status: str, exit_code: int | None, error: str | None, error_code: str | None = None) -> str:
    """How one server's result reads after its name: `exit status 3`, `timeout: ...`, and
    `exit status 1: sudo needs a password ...` when vpsagent knows why it failed."""
    if status == CommandStatus.FAILED and exit_code is not None:
        return f"exit status {exit_code}: {error}" if error_code and error else f"exit status {exit_code}"
    return f"{status}: {error}" if error else str(status)


def server_status_line(server: str, status: str, exit_code: int | None, error: str | None,
                       error_code: str | None = None) -> str:
    """`web1: unreachable: connection refused` (the error's own `web1: ` not repeated)."""
    return f"{server}: {status_line(status, exit_code, about(server, error) if error else error, error_code)}"


def summary_line(counts: dict[str, int], total: int) -> str:
    """`3 servers: 2 ok, 1 failed` (after a many-server run, on stderr)."""
    parts = [f"{counts[k]} {k}" for k in SUMMARY_ORDER if counts.get(k)]
    return f"{plural(total, 'server')}: " + ", ".join(parts)
