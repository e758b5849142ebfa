"""`vpsagent run`: one shell command on one or many servers, audited, no AI.

The service opens the fleet for the chosen servers, runs the command through the
fleet's audited run on each (fan-out for several), streams output through `on_output`
as it arrives and returns a `RunOutcome` whose exit code follows the contract:
0 all ok, 5 any unreachable, 1 any failed, 130 interrupted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from vpsagent import errors
from vpsagent.outcomes import CommandStatus, exit_code_for
from vpsagent.remote.base import CommandResult
from vpsagent.remote.fanout import Outcome
from vpsagent.services.context import Context
from vpsagent.services.fleet import Fleet, Selection

OnOutput = Callable[[str, str, bytes], None]  # (server, "stdout" | "stderr", chunk)
Redact = Callable[[str], str]
# What each result keeps of its output when streaming to a terminal (the audit row keeps
# an 8 KiB head+tail of it). --json keeps more: that is the output.
STREAM_CAPTURE = 64 * 1024
JSON_CAPTURE = 4 * 1024 * 1024


@dataclass
class RunRequest:
    command: str
    selection: Selection
    sudo: bool = False
    timeout: float | None = None
    forks: int | None = None
    serial: int | None = None
    max_fail: int | None = None
    keep_output: bool = False  # --json: the output is the result
    connect_timeout: float | None = None
    lock: bool = False  # --lock: one holder per server at a time (exit 75 when busy)
    lock_wait: float | None = None  # --lock-wait: wait this long for the lock (implies --lock)


@dataclass
class ServerRun:
    """One server's part of a run, as shown in the summary and in --json."""

    server: str
    status: CommandStatus
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    stdout_bytes: int = 0
    stderr_bytes: int = 0
    stdout_sha256: str | None = None
    stderr_sha256: str | None = None
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    duration_s: float = 0.0
    error: str | None = None
    error_code: str | None = None


@dataclass
class RunOutcome:
    command: str
    servers: list[ServerRun] = field(default_factory=list)
    exit_code: int = 0
    interrupted: bool = False

    def counts(self) -> dict[str, int]:
        c: dict[str, int] = {}
        for s in self.servers:
            c[s.status] = c.get(s.status, 0) + 1
        return c


def _from_result(r: CommandResult, keep_output: bool, redact: Redact) -> ServerRun:
    # --json is a record that ends up in CI logs and files: redacted like the audit log (the
    # sha256 and byte counts still describe the output as it was)
    return ServerRun(
        server=r.host, status=CommandStatus(r.status), exit_code=r.exit_code,
        stdout=redact(r.stdout_text()) if keep_output else "", stderr=redact(r.stderr_text()) if keep_output else "",
        stdout_bytes=r.stdout_bytes, stderr_bytes=r.stderr_bytes,
        stdout_sha256=r.stdout_sha256 or None, stderr_sha256=r.stderr_sha256 or None,
        stdout_truncated=r.stdout_truncated, stderr_truncated=r.stderr_truncated,
        duration_s=round(r.duration_s, 4), error=redact(r.error) if r.error else r.error, error_code=r.error_code,
    )


def _from_error(name: str, exc: BaseException, interrupted: bool) -> ServerRun:
    if isinstance(exc, errors.Interrupted) or (interrupted and isinstance(exc, KeyboardInterrupt)):
        return ServerRun(server=name, status=CommandStatus.INTERRUPTED, error="interrupted", error_code="interrupted")
    if isinstance(exc, errors.Unreachable):
        return ServerRun(server=name, status=CommandStatus.UNREACHABLE, error=exc.line(), error_code=exc.code)
    if isinstance(exc, errors.VpsAgentError):
        return ServerRun(server=name, status=CommandStatus.ERROR, error=exc.line(), error_code=exc.code)
    return ServerRun(server=name, status=CommandStatus.ERROR, error=f"{type(exc).__name__}: {exc}",
                     error_code="internal")


def _to_run(o: Outcome[CommandResult], keep_output: bool, interrupted: bool, redact: Redact) -> ServerRun:
    if o.skipped:
        why = "not started: interrupted" if interrupted else "not started: --max-fail reached"
        return ServerRun(server=o.name, status=CommandStatus.SKIPPED, error=why)
    if o.error is not None:
        return _from_error(o.name, o.error, interrupted)
    assert o.value is not None
    return _from_result(o.value, keep_output, redact)


def _check(request: RunRequest) -> None:
    from vpsagent.remote.fanout import DEFAULT_FORKS, check_limits

    if not request.command.strip():
        raise errors.InvalidInput("the command is empty")
    if request.timeout is not None and not (0 < request.timeout < math.inf):  # nan fails both
        raise errors.InvalidInput("--timeout must be a finite duration above zero")
    check_limits(DEFAULT_FORKS if request.forks is None else request.forks, request.serial, request.max_fail)


def run_command(ctx: Context, request: RunRequest, *, on_start: Callable[[list[str]], None] | None = None,
                on_output: OnOutput | None = None,
                on_server_done: Callable[[ServerRun], None] | None = None) -> RunOutcome:
    """Run the command on the chosen servers. Raises for bad input; server failures are results.

    `on_start(names)` learns which servers were chosen before any output arrives.
    """
    from vpsagent.services.fleet import open_fleet

    _check(request)
    with open_fleet(ctx, request.selection, warm=True, connect_timeout=request.connect_timeout) as fleet, \
            fleet.lock("run", wait_s=request.lock_wait, enabled=request.lock or request.lock_wait is not None):
        if on_start is not None:
            on_start(list(fleet.names))
        return _run_on(fleet, request, on_output, on_server_done)


def _run_on(fleet: Fleet, request: RunRequest, on_output: OnOutput | None,
            on_server_done: Callable[[ServerRun], None] | None) -> RunOutcome:
    from vpsagent.remote.fanout import DEFAULT_FORKS, fan_out

    capture = JSON_CAPTURE if request.keep_output else STREAM_CAPTURE
    outcome = RunOutcome(command=fleet.redactor.redact(request.command))

    def work(name: str) -> CommandResult:
        out = (lambda b: on_output(name, "stdout", b)) if on_output is not None else None
        err = (lambda b: on_output(name, "stderr", b)) if on_output is not None else None
        return fleet.run(name, request.command, source="run", sudo=request.sudo, timeout=request.timeout,
                         on_stdout=out, on_stderr=err, capture=capture)

    def done(o: Outcome[CommandResult]) -> None:
        if on_server_done is not None and not o.skipped:
            on_server_done(_to_run(o, request.keep_output, outcome.interrupted, fleet.redactor.redact))

    outs: Sequence[Outcome[CommandResult]]
    if len(fleet.names) == 1:
        # no threads for one server: Ctrl-C lands in the command's own loop
        outs = [_single(fleet.names[0], work, outcome)]
        done(outs[0])
    else:
        try:
            outs = fan_out(fleet.names, work, forks=DEFAULT_FORKS if request.forks is None else request.forks, serial=request.serial,
                           max_fail=request.max_fail, failed=_failed,
                           on_done=done, on_interrupt=fleet.interrupt)
        except KeyboardInterrupt as exc:
            outcome.interrupted = True
            outs = getattr(exc, "outcomes", [])
    outcome.servers = [_to_run(o, request.keep_output, outcome.interrupted, fleet.redactor.redact) for o in outs]
    outcome.exit_code = exit_code_for([s.status for s in outcome.servers], interrupted=outcome.interrupted)
    return outcome


def _failed(o: Outcome[CommandResult]) -> bool:
    """Counts towards --max-fail: the command could not run, or ran and did not succeed."""
    return o.error is not None or o.value is None or not o.value.ok


def _single(name: str, work: Callable[[str], CommandResult], outcome: RunOutcome) -> Outcome[CommandResult]:
    try:
        return Outcome(name, value=work(name))
    except KeyboardInterrupt:
        outcome.interrupted = True
        return Outcome(name, error=errors.Interrupted("interrupted"))
    except errors.VpsAgentError as exc:
        return Outcome(name, error=exc)
