"""`vpsagent ssh`: an interactive session (or one command) on a server, with the stored
credentials and the pinned host key, and local port forwarding.

The session is audited like any command — a row before it starts, completed with its
exit status, who ran it — but what is typed in it is neither parsed nor gated by the
safety gate, and not recorded: the row says so. `--record` writes what the session
showed as an asciicast v2 file (https://docs.asciinema.org/manual/asciicast/v2/).
"""

from __future__ import annotations

import codecs
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from vpsagent import errors
from vpsagent.db.inventory import LOCAL
from vpsagent.outcomes import CommandStatus
from vpsagent.remote.base import CommandResult
from vpsagent.remote.interactive import Forward, LocalForwarder, Terminal, run_session

if TYPE_CHECKING:
    from vpsagent.remote.ssh import SSHHost
    from vpsagent.services.context import Context
    from vpsagent.services.fleet import Fleet

SOURCE = "ssh"
KILLED = 255  # what ssh exits with when the remote side gave no exit status
NOT_GATED = "interactive session: what is typed is not parsed, gated or recorded"
_ADDR = r"(?:\[[^\]]+\]|[^:\[\]]+)"
_FORWARD = re.compile(rf"^(?:(?P<bind>{_ADDR}):)?(?P<port>\d+):(?P<host>{_ADDR}):(?P<hostport>\d+)$")


def parse_forward(spec: str) -> Forward:
    """`[bind_address:]port:host:hostport` as ssh -L takes it (IPv6 addresses in brackets)."""
    m = _FORWARD.match(spec.strip())
    if m is None:
        raise errors.UsageError(f"-L {spec}: expected [bind_address:]port:host:hostport, e.g. 8080:localhost:80")
    bind = (m.group("bind") or "127.0.0.1").strip("[]")
    if bind in ("*", ""):
        bind = "0.0.0.0"
    elif bind == "localhost":
        bind = "127.0.0.1"
    ports = int(m.group("port")), int(m.group("hostport"))
    for p in ports:
        if not 0 < p < 65536:
            raise errors.UsageError(f"-L {spec}: port {p} is not in 1-65535")
    return Forward(bind, ports[0], m.group("host").strip("[]"), ports[1])


@dataclass
class SessionRequest:
    server: str
    command: str | None = None  # None: an interactive shell
    forwards: Sequence[str] = ()  # -L specs
    no_command: bool = False  # -N: only forward ports
    record: Path | None = None


@dataclass
class SessionResult:
    server: str
    command: str | None
    exit_status: int | None
    duration_s: float
    audit_id: int
    forwards: list[str] = field(default_factory=list)
    recording: str | None = None


class AsciicastWriter:
    """What the session showed, as asciicast v2: a JSON header line, then [time, "o", text]
    lines (and "r" for a resize). Output is decoded incrementally, so a character split
    between two reads is written whole."""

    def __init__(self, path: Path, columns: int, rows: int, title: str, term: str) -> None:
        self.path = path
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it may show secrets
        except OSError as exc:
            raise errors.UsageError(f"--record {path}: {exc.strerror}") from None
        self._file: IO[str] = os.fdopen(fd, "w", encoding="utf-8")
        self._start = time.monotonic()
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        header = {"version": 2, "width": columns, "height": rows, "timestamp": int(time.time()),
                  "title": title, "env": {"TERM": term}}
        self._file.write(json.dumps(header) + "\n")

    def _event(self, kind: str, text: str) -> None:
        self._file.write(json.dumps([round(time.monotonic() - self._start, 6), kind, text]) + "\n")

    def output(self, data: bytes) -> None:
        text = self._decoder.decode(data)
        if text:
            self._event("o", text)

    def resize(self, columns: int, rows: int) -> None:
        self._event("r", f"{columns}x{rows}")

    def close(self) -> None:
        rest = self._decoder.decode(b"", final=True)
        if rest:
            self._event("o", rest)
        self._file.close()


def _label(req: SessionRequest, forwards: Sequence[Forward]) -> str:
    """What the audit row shows as the command."""
    fwd = "".join(f" -L {f}" for f in forwards)
    if req.no_command:
        return f"ssh -N{fwd}"
    return f"ssh{fwd} -- {req.command}" if req.command is not None else f"ssh{fwd} (interactive shell)"


def _ssh_host(fleet: Fleet, name: str) -> SSHHost:
    from vpsagent.remote.ssh import SSHHost

    host = fleet.host(name)
    assert isinstance(host, SSHHost)  # every server but `local`, refused before
    return host


def _check(req: SessionRequest) -> list[Forward]:
    if req.server == LOCAL:
        raise errors.InvalidInput("'local' is this machine: there is no SSH session to open; use your own shell")
    forwards = [parse_forward(f) for f in req.forwards]
    if req.no_command and req.command is not None:
        raise errors.UsageError("-N runs no command: give either -N or a command")
    if req.no_command and not forwards:
        raise errors.UsageError("-N only forwards ports: give -L too, e.g. -N -L 8080:localhost:80")
    if req.no_command and req.record is not None:
        raise errors.UsageError("--record records a session; with -N there is none")
    return forwards


def ssh_session(ctx: Context, req: SessionRequest, terminal: Terminal, *,
                on_forward_error: Callable[[str], None] | None = None) -> SessionResult:
    """Open the session (or only the forwards, with -N, until Ctrl-C) and run it to its end."""
    from vpsagent.services.fleet import open_fleet

    forwards = _check(req)
    label = _label(req, forwards)
    with open_fleet(ctx, [req.server]) as fleet:
        host = _ssh_host(fleet, req.server)
        row = fleet.audit.start(server=req.server, command=label, source=SOURCE, decision_reason=NOT_GATED)
        started = time.monotonic()
        recorder: AsciicastWriter | None = None
        forwarders: list[LocalForwarder] = []
        try:
            host.connect()
            forwarders = [LocalForwarder(host.transport(), f, on_forward_error).start() for f in forwards]
            for f in forwards:
                ctx.notify(f"forwarding {f.bind_host}:{f.bind_port} to {f.dest_host}:{f.dest_port} "
                           f"as seen from {req.server}")
            if req.no_command:
                status: int | None = 0 if _until_closed(host) else None
                bytes_out = 0
            else:
                if req.record is not None:
                    columns, rows = terminal.size() if terminal.size else (80, 24)
                    recorder = AsciicastWriter(req.record, columns, rows, f"vpsagent ssh {req.server}", terminal.term)
                end = run_session(host.session_channel(), terminal, req.command, recorder)
                status, bytes_out = end.exit_status, end.bytes_out
                if status is None and end.connection_alive:
                    status = KILLED  # killed by a signal: no exit status, the connection is fine
        except BaseException as exc:
            record_failure(fleet, row, exc, time.monotonic() - started)
            raise
        finally:
            for fw in forwarders:
                fw.close()
            if recorder is not None:
                recorder.close()
        duration = time.monotonic() - started
        _finish(fleet, row, req.server, label, status, bytes_out, duration)
    if status is None:
        raise errors.ConnectionLost(f"{req.server}: the session ended without an exit status (connection lost?)")
    return SessionResult(server=req.server, command=req.command, exit_status=status, duration_s=duration,
                         audit_id=row, forwards=[str(f) for f in forwards],
                         recording=str(req.record) if req.record is not None and not req.no_command else None)


def _until_closed(host: SSHHost) -> bool:
    """-N: forward until Ctrl-C (its normal end, so not an interruption: True) or until the
    connection ends (False)."""
    transport = host.transport()
    try:
        while transport.is_active():
            time.sleep(0.2)
    except KeyboardInterrupt:
        return True
    return False


def _finish(fleet: Fleet, row: int, server: str, label: str, status: int | None, bytes_out: int,
            duration: float) -> None:
    if status is None:
        outcome, error = CommandStatus.CONNECTION_LOST, "the session ended without an exit status"
    elif status == 0:
        outcome, error = CommandStatus.OK, None
    elif status == KILLED:
        outcome, error = CommandStatus.FAILED, "ended without an exit status (killed by a signal?)"
    else:
        outcome, error = CommandStatus.FAILED, f"exit status {status}"
    fleet.audit.finish(row, CommandResult(host=server, command=label, exit_code=status, duration_s=duration,
                                          stdout_bytes=bytes_out, status=outcome, error=error))


def record_failure(fleet: Fleet, row: int, exc: BaseException, duration: float) -> None:
    """Complete an audit row whose session (or copy) ended in an exception, by its kind."""
    if isinstance(exc, KeyboardInterrupt):
        status, why = CommandStatus.INTERRUPTED, "interrupted (Ctrl-C)"
    elif isinstance(exc, errors.Unreachable):
        status, why = CommandStatus.UNREACHABLE, exc.line()
    elif isinstance(exc, errors.VpsAgentError):  # a known failure: a missing file, a port in use
        status, why = CommandStatus.FAILED, exc.line()
    else:
        status, why = CommandStatus.ERROR, f"{type(exc).__name__}: {exc}"
    try:
        fleet.audit.fail(row, status, why, duration_s=duration)
    except Exception:  # noqa: BLE001 - already failing: the original error is the one to report
        pass
