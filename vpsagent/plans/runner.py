"""Running plans: steps in order on each server, servers in parallel.

The runner knows nothing about the database, the audit log or the terminal. The
service hands it `open_host(name) -> Host` (pooled connections) and
`execute(host, command, timeout, sudo) -> CommandResult` (which goes through the
audit log), and receives progress through `on_event`. That keeps this module
testable against any Host and keeps every command audited by construction.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from vpsagent.errors import Unreachable
from vpsagent.jsondata import JSON, JSONObject
from vpsagent.plans import checks, templating
from vpsagent.plans.schema import Plan, Step
from vpsagent.remote.base import CommandResult, Host
from vpsagent.wording import about

# What a step result keeps of each stream for reports and the database: head + tail.
# Matching and captures see the Host's full capture (4 MiB head+tail), not this.
EXCERPT = 64 * 1024
# How long a stopped run waits for the other servers' interrupted commands to end.
STOP_WAIT_S = 10.0

Execute = Callable[[Host, str, float, bool], CommandResult]
OnEvent = Callable[["Event"], None]
Redact = Callable[[str], str]


@dataclass
class StepResult:
    seq: int
    name: str
    kind: str
    status: str  # passed | failed | error | skipped
    line: int = 0
    command: str | None = None
    description: str = ""
    exit_code: int | None = None
    attempts: int = 0
    duration_s: float = 0.0
    message: str = ""  # why it failed / was skipped, one line per problem joined by "; "
    expected: str = ""
    actual: str = ""
    stdout: str = ""
    stderr: str = ""
    stdout_bytes: int = 0
    stderr_bytes: int = 0
    captured: dict[str, str] = field(default_factory=dict)
    explanation: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("passed", "skipped")

    def redact(self, redact: Redact) -> None:
        """Every text a report, the database or the terminal gets from this step, through
        `redact`: a step may print any stored credential, and its command may hold one."""
        self.name, self.description = redact(self.name), redact(self.description)
        self.command = redact(self.command) if self.command is not None else None
        self.message, self.expected, self.actual = redact(self.message), redact(self.expected), redact(self.actual)
        self.stdout, self.stderr = redact(self.stdout), redact(self.stderr)
        # a new dict: the runner's own copy feeds later steps' variables unchanged
        self.captured = {k: redact(v) for k, v in self.captured.items()}
        if self.explanation is not None:
            self.explanation = redact(self.explanation)


@dataclass
class ServerResult:
    server: str
    status: str = "passed"  # passed | failed | error | unreachable
    steps: list[StepResult] = field(default_factory=list)
    duration_s: float = 0.0
    error: str | None = None

    def count(self, status: str) -> int:
        return sum(1 for s in self.steps if s.status == status)


@dataclass
class PlanResult:
    plan: Plan
    servers: list[ServerResult] = field(default_factory=list)
    run_id: int | None = None
    started_at: float = 0.0  # epoch seconds
    duration_s: float = 0.0
    interrupted: bool = False

    @property
    def status(self) -> str:
        if self.interrupted:
            return "interrupted"
        states = {s.status for s in self.servers}
        if "unreachable" in states or "error" in states:
            return "error"
        return "failed" if "failed" in states else "passed"

    def count(self, status: str) -> int:
        return sum(s.count(status) for s in self.servers)


@dataclass
class Event:
    kind: str  # server_start | step_start | step_done | server_done
    plan: Plan
    server: str
    step: Step | None = None
    result: StepResult | None = None
    server_result: ServerResult | None = None


def excerpt(data: bytes, limit: int = EXCERPT) -> str:
    if len(data) <= limit:
        return data.decode("utf-8", "replace")
    half = limit // 2
    cut = len(data) - 2 * half
    return (data[:half].decode("utf-8", "replace") + f"\n[... {cut} bytes cut ...]\n"
            + data[-half:].decode("utf-8", "replace"))


def describe_expectation(step: Step, spec: JSON, expect: JSONObject) -> str:
    if step.kind != "run":
        keys = {k: v for k, v in (spec or {}).items() if k not in ("name", "path", "url", "port")}
        return ", ".join(f"{k}={v}" for k, v in keys.items()) or "defaults"
    parts = [f"exit {expect.get('exit', 0)}"]
    for stream in ("stdout", "stderr"):
        for k, v in (expect.get(stream) or {}).items():
            parts.append(f"{stream} {k} {v!r}")
    return "; ".join(parts)


def _summary(result: CommandResult) -> str:
    if result.exit_code is None:
        return result.error or result.status
    first = result.stdout_text().strip().splitlines()
    shown = first[0][:200] if first else ""
    return f"exit {result.exit_code}" + (f"; stdout {shown!r}" if shown else "")


class _ServerRun:
    def __init__(self, plan: Plan, server: str, overrides: Mapping[str, object], fail_fast: bool,
                 open_host: Callable[[str], Host], execute: Execute, on_event: OnEvent,
                 cancel: threading.Event, redact: Redact | None = None):
        self.plan, self.server = plan, server
        # what `{{ name }}` may refer to; captures are added as steps pass
        self.context: dict[str, object] = {**plan.vars, **overrides, "server": server,
                                           "plan": plan.name}
        self.fail_fast = fail_fast
        # variable -> the step whose capture of it failed: a later step that needs it is
        # not run, and says which capture it lacks (not "undefined variable")
        self.uncaptured: dict[str, int] = {}
        self.open_host, self.execute, self.on_event = open_host, execute, on_event
        self.cancel = cancel
        self.redact = redact

    def run(self, res: ServerResult) -> ServerResult:
        """Fill `res` step by step (the caller can store what completed if the run is cut)."""
        started = time.monotonic()
        self.on_event(Event("server_start", self.plan, self.server))
        host: Host | None = None
        stop_reason: str | None = None  # set when the remaining steps cannot run
        failed_at: int | None = None
        for step in self.plan.steps:
            if stop_reason is None and self.cancel.is_set():
                stop_reason = "not run: the run was stopped"
            if stop_reason is not None:
                sr = StepResult(step.index, self.title(step), step.kind, "error" if res.status ==
                                "unreachable" else "skipped", line=step.line, message=stop_reason)
            elif step.skip:
                sr = StepResult(step.index, self.title(step), step.kind, "skipped", line=step.line,
                                message=step.skip)
            elif failed_at is not None and self.fail_fast:
                sr = StepResult(step.index, self.title(step), step.kind, "skipped", line=step.line,
                                message=f"not run: fail_fast after step {failed_at} failed")
            else:
                self.on_event(Event("step_start", self.plan, self.server, step=step))
                try:
                    if host is None and self._needs_host(step):
                        host = self.open_host(self.server)
                    sr = self.step(step, host)
                except Unreachable as e:
                    # shown after the server's name: it is not said twice
                    res.status, res.error = "unreachable", about(self.server, e.line())
                    stop_reason = f"not run: {self.server} is unreachable"
                    sr = StepResult(step.index, self.title(step), step.kind, "error", line=step.line,
                                    message=f"unreachable: {res.error}")
            if sr.status in ("failed", "error") and failed_at is None:
                failed_at = step.index
            if self.redact is not None:
                sr.redact(self.redact)
            if sr.status != "passed":
                for var in step.capture:
                    self.uncaptured.setdefault(var, step.index)
            res.steps.append(sr)
            self.on_event(Event("step_done", self.plan, self.server, step=step, result=sr))
        if res.status != "unreachable":
            states = {s.status for s in res.steps}
            res.status = "error" if "error" in states else "failed" if "failed" in states \
                else "passed"
        res.duration_s = time.monotonic() - started
        self.on_event(Event("server_done", self.plan, self.server, server_result=res))
        return res

    def title(self, step: Step) -> str:
        """The step's name with the variables known so far (as written if one is missing)."""
        try:
            return templating.render(step.name, self.context)
        except templating.TemplateError:
            return step.name

    def _needs_host(self, step: Step) -> bool:
        return not (step.kind == "http" and isinstance(step.spec, dict)
                    and step.spec.get("from") == "local")

    def step(self, step: Step, host: Host | None) -> StepResult:
        """Render the step with the variables known now, run its check until it passes or
        its retries run out, and record what the last attempt saw."""
        # a name that needs a variable not captured stays as written: the check still runs
        sr = StepResult(step.index, self.title(step), step.kind, "error", line=step.line)
        try:
            spec = templating.render_tree(step.spec, self.context)
            expect = templating.render_tree(step.expect, self.context)
            capture = templating.render_tree(step.capture, self.context)
            check = checks.build(step, spec, expect, capture)
        except templating.TemplateError as e:
            if e.variable in self.uncaptured:
                sr.status = "skipped"
                sr.message = f"not run: step {self.uncaptured[e.variable]} did not capture {e.variable}"
            else:
                sr.message = str(e)
            return sr
        except (checks.CheckError, ValueError) as e:
            sr.message = str(e)
            return sr
        sr.command, sr.description = check.command, check.description
        sr.expected = describe_expectation(step, spec, expect)
        started = time.monotonic()
        result, outcome, sr.attempts = self._attempt(step, host, check, started)
        sr.duration_s = time.monotonic() - started
        self._record(sr, result, outcome)
        return sr

    def _attempt(self, step: Step, host: Host | None, check: checks.Check,
                 started: float) -> tuple[CommandResult, checks.Outcome, int]:
        """Run `check` until it passes, the run is stopped, or `retry`/`eventually` give up;
        the last result, its judgement and the number of attempts."""
        deadline = started + step.eventually if step.eventually else None
        attempts = 0
        while True:
            attempts += 1
            if check.local is not None:
                result = check.local(step.timeout)
            else:
                assert host is not None
                # http gives curl/wget its own limit of step.timeout: leave it room to answer
                pad = 2.0 if step.kind == "http" else 0.0
                result = self.execute(host, check.command or "", step.timeout + pad, step.sudo)
            outcome = check.judge(result)
            if outcome.passed or self.cancel.is_set():
                return result, outcome, attempts
            pause = step.retry_interval
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return result, outcome, attempts
                pause = min(pause, left)  # one last try right at the deadline
            elif attempts >= step.retry_attempts:
                return result, outcome, attempts
            time.sleep(pause)

    def _record(self, sr: StepResult, result: CommandResult, outcome: checks.Outcome) -> None:
        """What the last attempt saw, and the verdict; a passed step's captures become variables."""
        sr.exit_code = result.exit_code
        sr.stdout, sr.stderr = excerpt(result.stdout), excerpt(result.stderr)
        sr.stdout_bytes = result.stdout_bytes or len(result.stdout)
        sr.stderr_bytes = result.stderr_bytes or len(result.stderr)
        sr.actual = _summary(result)
        if outcome.passed:
            sr.status = "passed"
            sr.captured = outcome.captured
            self.context.update(outcome.captured)
        else:
            # a command that never finished (lost connection, interrupt) is an error;
            # everything else, including a timeout, is a failed check
            lost = result.exit_code is None and result.status not in ("timeout",)
            sr.status = "error" if lost else "failed"
            sr.message = outcome.message
            if sr.attempts > 1:
                sr.message += f" (after {sr.attempts} attempts)"


def run_plan(
    plan: Plan,
    servers: Sequence[str],
    *,
    open_host: Callable[[str], Host],
    execute: Execute,
    overrides: Mapping[str, object] | None = None,
    forks: int = 8,
    fail_fast: bool | None = None,
    on_event: OnEvent | None = None,
    cancel: threading.Event | None = None,
    on_cancel: Callable[[], None] | None = None,
    redact: Redact | None = None,
    result: PlanResult | None = None,
) -> PlanResult:
    """Run one plan on each server (in parallel, at most `forks` at once).

    Each step's result passes through `redact` before anyone sees it (events, reports).

    When the run is stopped (Ctrl-C, a closed pipe under the progress lines, or a worker
    raised), `on_cancel()` is called to interrupt the commands still running on the other
    servers, and the exception goes on; a `result` passed in then holds the steps that
    completed, marked interrupted, so the caller can store what did run.
    """
    result = result or PlanResult(plan=plan)
    result.started_at = time.time()
    started = time.monotonic()
    cancel = cancel or threading.Event()
    ff = plan.fail_fast if fail_fast is None else fail_fast
    partial: dict[str, ServerResult] = {}

    def one(server: str) -> ServerResult:
        partial[server] = ServerResult(server)
        return _ServerRun(plan, server, dict(overrides or {}), ff, open_host, execute,
                          on_event or (lambda e: None), cancel, redact).run(partial[server])

    try:
        result.servers = _run_servers(servers, one, forks, cancel, on_cancel)
    except BaseException:
        result.servers = [partial[s] for s in servers if s in partial]
        result.interrupted = True
        result.duration_s = time.monotonic() - started
        raise
    result.duration_s = time.monotonic() - started
    return result


def _run_servers(servers: Sequence[str], one: Callable[[str], ServerResult], forks: int,
                 cancel: threading.Event, on_cancel: Callable[[], None] | None) -> list[ServerResult]:
    if len(servers) == 1:
        return [one(servers[0])]
    pool = ThreadPoolExecutor(max_workers=max(1, min(forks, len(servers))))
    futures = [pool.submit(one, s) for s in servers]
    try:
        done = [f.result() for f in futures]
    except BaseException:
        cancel.set()  # let the other servers stop after their current step
        if on_cancel is not None:
            on_cancel()  # stop the commands running in the workers now (Ctrl-C)...
        # ...and give them a moment to stop and finish their audit rows, but never
        # wait for a command that cannot be stopped to run to its end
        wait(futures, timeout=STOP_WAIT_S)
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return done
