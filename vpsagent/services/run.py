"""`vpsagent run`: one shell command on one or many servers, audited, no AI.

The service resolves the servers, opens one connection per server (HostPool), runs the
command through the audit log on each (fan-out for several), streams output through
`on_output` as it arrives and returns a `RunOutcome` with the exit code the contract
asks for: 0 all ok, 5 any unreachable, 1 any failed, 130 interrupted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vpsagent import errors
from vpsagent.errors import ExitCode

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from vpsagent.remote.base import CommandResult
    from vpsagent.settings import Settings

OnOutput = Callable[[str, str, bytes], None]  # (server, "stdout" | "stderr", chunk)
# What each result keeps of its output when streaming to a terminal (the audit row keeps
# an 8 KiB head+tail of it). --json keeps more: that is the output.
STREAM_CAPTURE = 64 * 1024
JSON_CAPTURE = 4 * 1024 * 1024


@dataclass
class ServerRun:
    """One server's part of a run, as shown in the summary and in --json."""

    server: str
    status: str  # ok | failed | timeout | connection_lost | unreachable | interrupted | skipped | error
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    stdout_bytes: int = 0
    stderr_bytes: int = 0
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


def _from_result(r: CommandResult, keep_output: bool) -> ServerRun:
    return ServerRun(
        server=r.host, status=r.status, exit_code=r.exit_code,
        stdout=r.stdout_text() if keep_output else "", stderr=r.stderr_text() if keep_output else "",
        stdout_bytes=r.stdout_bytes, stderr_bytes=r.stderr_bytes,
        stdout_truncated=r.stdout_truncated, stderr_truncated=r.stderr_truncated,
        duration_s=round(r.duration_s, 4), error=r.error,
    )


def _from_error(name: str, exc: BaseException) -> ServerRun:
    if isinstance(exc, errors.Unreachable):
        return ServerRun(server=name, status="unreachable", error=exc.line(), error_code=exc.code)
    if isinstance(exc, errors.VpsAgentError):
        return ServerRun(server=name, status="error", error=exc.line(), error_code=exc.code)
    return ServerRun(server=name, status="error", error=f"{type(exc).__name__}: {exc}", error_code="internal")


def exit_code_for(runs: Sequence[ServerRun], interrupted: bool) -> int:
    if interrupted:
        return int(ExitCode.INTERRUPTED)
    if any(r.status in ("unreachable", "connection_lost") for r in runs):
        return int(ExitCode.UNREACHABLE)
    if any(r.status != "ok" for r in runs):
        return int(ExitCode.FAILURE)
    return int(ExitCode.OK)


def _redactor(settings: Settings, records: Sequence[Any]):
    """Stored credentials of these servers must never land in an audit row."""
    from vpsagent.db.audit import secret_redactor
    from vpsagent.services.redaction import known_secrets

    return secret_redactor(known_secrets(settings, records))


def _load_records(settings: Settings, engine: Engine, chosen: Sequence[str], pool: Any,
                  keyring_get: Callable[[], Any]) -> dict[str, Any]:
    """Every chosen server's record (and its jump hosts'), loaded once, secrets decrypted.

    TCP connections are opened first (`pool.warm`) and the key is derived in a thread
    (scrypt releases the GIL) while the SSH libraries are imported: on a many-server run
    these overlap instead of adding up.
    """
    from concurrent.futures import ThreadPoolExecutor

    from vpsagent.services.servers import LOCAL, list_servers, load_servers, with_jump_hosts

    views = {v.name: v for v in list_servers(engine)}
    wanted, secretive = with_jump_hosts(views, chosen)
    with ThreadPoolExecutor(max_workers=1) as ex:
        kr = ex.submit(keyring_get) if secretive else None
        pool.warm([(n, views[n].host, views[n].port) for n in chosen
                   if n != LOCAL and not views[n].jump])
        if any(n != LOCAL for n in chosen):
            import fabric  # noqa: F401  - imported now, while the key is being derived
        keyring = kr.result() if kr is not None else None
    return load_servers(engine, keyring, wanted)


def run_command(
    settings: Settings,
    engine: Engine,
    command: str,
    *,
    names: Sequence[str] = (),
    tags: Sequence[str] = (),
    all_: bool = False,
    sudo: bool = False,
    timeout: float | None = None,
    forks: int | None = None,
    serial: int | None = None,
    max_fail: int | None = None,
    keyring_get: Callable[[], Any] | None = None,
    notify: Callable[[str], None] | None = None,
    on_output: OnOutput | None = None,
    on_server_done: Callable[[ServerRun], None] | None = None,
    keep_output: bool = False,
    connect_timeout: float | None = None,
) -> RunOutcome:
    """Run `command` on the chosen servers. Raises for bad input; server failures are results."""
    from vpsagent.db.audit import AuditLog, run_audited
    from vpsagent.remote.fanout import DEFAULT_FORKS, check_limits, fan_out
    from vpsagent.remote.hosts import DEFAULT_CONNECT_TIMEOUT, HostPool, select_servers

    if not command.strip():
        raise errors.InvalidInput("the command is empty")
    if timeout is not None and timeout <= 0:
        raise errors.InvalidInput("--timeout must be a positive number of seconds")
    forks = DEFAULT_FORKS if forks is None else forks
    check_limits(forks, serial, max_fail)
    chosen = select_servers(engine, names, tags, all_)

    cached: dict[str, Any] = {}

    def get_keyring() -> Any:
        if "k" not in cached:
            if keyring_get is not None:
                cached["k"] = keyring_get()
            else:
                from vpsagent.services.vault import get_keyring

                cached["k"] = get_keyring(settings, engine, notify or (lambda _m: None))
        return cached["k"]

    capture = JSON_CAPTURE if keep_output else STREAM_CAPTURE
    outcome = RunOutcome(command=command)
    pool = HostPool(settings, engine, keyring_get=get_keyring, notify=notify,
                    connect_timeout=connect_timeout or DEFAULT_CONNECT_TIMEOUT)
    try:
        pool.records = _load_records(settings, engine, chosen, pool, get_keyring)
    except BaseException:
        pool.close()
        raise
    audit = AuditLog(engine, redact=_redactor(settings, list(pool.records.values())))

    def work(name: str) -> CommandResult:
        host = pool.get(name)
        kw: dict[str, Any] = {"timeout": timeout, "capture": capture}
        if on_output is not None:
            kw["on_stdout"] = lambda b, n=name: on_output(n, "stdout", b)
            kw["on_stderr"] = lambda b, n=name: on_output(n, "stderr", b)
        return run_audited(audit, host, command, source="run", sudo=sudo, **kw)

    def to_run(o: Any) -> ServerRun:
        if o.skipped:
            why = "not started: interrupted" if outcome.interrupted else "not started: --max-fail reached"
            return ServerRun(server=o.name, status="skipped", error=why)
        if o.error is not None:
            return _from_error(o.name, o.error)
        return _from_result(o.value, keep_output)

    def done(o: Any) -> None:
        if on_server_done is not None and not o.skipped:
            on_server_done(to_run(o))

    try:
        if len(chosen) == 1:
            # no threads for one server: Ctrl-C lands in the command's own loop
            try:
                outs = [_single(chosen[0], work)]
            except KeyboardInterrupt:
                outcome.interrupted = True
                outs = [_Out(chosen[0], error=errors.Interrupted("interrupted"))]
            done(outs[0])
        else:
            try:
                outs = fan_out(chosen, work, forks=forks, serial=serial, max_fail=max_fail,
                               failed=lambda o: o.error is not None or not o.value.ok,
                               on_done=done, on_interrupt=pool.interrupt)
            except KeyboardInterrupt as exc:
                outcome.interrupted = True
                outs = getattr(exc, "outcomes", [])
    finally:
        pool.close()
    outcome.servers = [to_run(o) for o in outs]
    if outcome.interrupted:
        for s in outcome.servers:
            if s.status == "error" and s.error_code == "interrupted":
                s.status = "interrupted"
    outcome.exit_code = exit_code_for(outcome.servers, outcome.interrupted)
    return outcome


@dataclass
class _Out:
    name: str
    value: Any = None
    error: BaseException | None = None
    skipped: bool = False


def _single(name: str, work: Callable[[str], Any]) -> _Out:
    try:
        return _Out(name, value=work(name))
    except errors.VpsAgentError as exc:
        return _Out(name, error=exc)
