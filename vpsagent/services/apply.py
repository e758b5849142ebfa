"""`vpsagent apply`: run a reviewed change plan on servers, with no model call at all.

What runs is what was reviewed: the file's SHA-256 is checked against the last version
vpsagent showed (`plan show`, `ask --plan`) and again after approval, and it is written into
every audit row (source `apply`). Every step is judged again with today's policy; a step the
policy denies stops the whole plan before anything runs. One approval for the whole plan,
on a terminal (`approve`); `--yes` covers `change` steps only.

Servers go canary first, then in batches (`--serial`, one at a time by default). On a server,
steps run in order and each step's `verify` checks run after it; when a step or a check
fails, that server's completed steps are undone in reverse order and no further server is
started (unless `--max-fail` allows more failures; a failed canary always stops).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vpsagent import errors
from vpsagent.jsondata import JSONObject
from vpsagent.outcomes import ApplyOutcome, Decision, exit_code_for
from vpsagent.plans.changes import ChangePlan, ChangeStep, read_plan_bytes
from vpsagent.services.context import Context
from vpsagent.services.fleet import Fleet, Selection
from vpsagent.services.plans import PlanReview
from vpsagent.wording import plural

if TYPE_CHECKING:
    from vpsagent.remote.base import CommandResult

SOURCE = "apply"
# how the last version vpsagent saw of a plan file came to be seen (plans.origin)
_SEEN = {"ask": "written by `ask --plan`", "canary": "written by `ask --canary`", "show": "shown",
         "validate": "validated", "apply": "applied"}


@dataclass
class ApplyRequest:
    path: str
    selection: Selection = field(default_factory=Selection)
    canary: int = 0
    serial: int | None = 1
    max_fail: str = "0"  # N or P% of the servers
    yes: bool = False
    dry_run: bool = False
    expect_hash: str | None = None  # --hash: apply only this version
    conversation_id: int | None = None  # set when `ask --canary` hands its plan over
    lock: bool = False  # --lock: hold every chosen server's lock for the whole rollout (exit 75 when busy)
    lock_wait: float | None = None  # --lock-wait: wait this long for it (implies --lock)


@dataclass
class StepRun:
    index: int
    name: str
    action: str
    status: str = "not_run"  # ok | failed | not_run | planned
    exit_code: int | None = None
    verify: str | None = None  # passed | failed | None (no checks)
    message: str = ""

    def as_dict(self) -> JSONObject:
        return dict(self.__dict__)


@dataclass
class UndoRun:
    index: int
    command: str
    status: str  # ok | failed | none (the step has no undo)
    exit_code: int | None = None
    message: str = ""

    def as_dict(self) -> JSONObject:
        return dict(self.__dict__)


@dataclass
class ServerApply:
    server: str
    outcome: ApplyOutcome = ApplyOutcome.SKIPPED
    steps: list[StepRun] = field(default_factory=list)
    undone: list[UndoRun] = field(default_factory=list)
    error: str | None = None

    def as_dict(self) -> JSONObject:
        return {"server": self.server, "outcome": self.outcome.value, "steps": [s.as_dict() for s in self.steps],
                "undone": [u.as_dict() for u in self.undone], "error": self.error}


@dataclass
class ApplyResult:
    review: PlanReview
    status: str  # applied | failed | refused | dry_run | unreachable | interrupted
    exit_code: int
    servers: list[ServerApply] = field(default_factory=list)
    application_id: int | None = None
    refused: list[str] = field(default_factory=list)  # why nothing ran
    dry_run: bool = False

    @property
    def hash(self) -> str:
        return self.review.plan.hash

    def as_dict(self) -> JSONObject:
        return {"application_id": self.application_id, "hash": self.hash, "path": self.review.plan.path,
                "status": self.status, "dry_run": self.dry_run, "refused": self.refused,
                "servers": [s.as_dict() for s in self.servers],
                "judgements": [j.as_dict() for j in self.review.judgements]}


@dataclass
class ApplyEvent:
    """Progress for the terminal: kind is server | step | verify | undo | skip."""

    kind: str
    server: str
    text: str
    ok: bool = True


ApproveFn = Callable[[PlanReview], bool]
OnEvent = Callable[[ApplyEvent], None]


# --------------------------------------------------------------------------- checks before anything runs


def parse_max_fail(text: str, servers: int) -> int:
    """`N` servers, or `P%` of them (rounded down): how many may fail before apply stops."""
    t = text.strip()
    try:
        if t.endswith("%"):
            pct = float(t[:-1])
            if not 0 <= pct <= 100:
                raise ValueError
            return int(servers * pct / 100)
        n = int(t)
        if n < 0:
            raise ValueError
        return n
    except ValueError:
        raise errors.InvalidInput(f"--max-fail {text!r}: give a number of servers (2) or a percentage (25%)") from None


def _check_version(req: ApplyRequest, review: PlanReview) -> None:
    """Refuse a plan that is not the version that was shown (exit 4: review it again)."""
    plan = review.plan
    if req.expect_hash and not plan.hash.startswith(req.expect_hash.lower().removeprefix("sha256:")):
        raise errors.ApprovalRequired(
            f"{plan.path} has hash {plan.short}, not {req.expect_hash}: it changed since it was reviewed; "
            "nothing was run", hint="review it again with `vpsagent plan show`")
    prev = review.previous
    if prev is not None:
        raise errors.ApprovalRequired(
            f"{plan.path} changed after it was {_SEEN.get(prev.origin, 'shown')} (hash {plan.short}, then "
            f"{prev.hash[:12]} on {prev.seen_at:%Y-%m-%d %H:%M}); nothing was run",
            hint=f"review the new version with `vpsagent plan show {plan.path}`, then apply it",
            data={"hash": plan.hash, "shown_hash": prev.hash})


def _refusals(review: PlanReview, *, interactive: bool) -> list[str]:
    """Why the plan cannot run as it stands (empty: it may, perhaps after one approval)."""
    out = [f"step {j.step}{' (undo)' if j.undo else ''} on {j.server}: {j.reason}" for j in review.denied]
    if out or interactive:
        return out
    for j in review.asks:
        what = ("unknown commands need a policy rule that allows them exactly" if j.risk.value == "unknown"
                else "rerun on a terminal, with --yes, or add an allow rule to the policy")
        out.append(f"step {j.step}{' (undo)' if j.undo else ''} on {j.server} ({j.risk.value}) needs approval "
                   f"and nobody can give it here: {what}")
    return out


# --------------------------------------------------------------------------- the service


def apply_plan(ctx: Context, req: ApplyRequest, *, approve: ApproveFn | None = None,
               on_event: OnEvent | None = None, show: Callable[[PlanReview], None] | None = None) -> ApplyResult:
    """Check, approve once, then run the plan server by server (see the module docstring).

    `show` is given the review first when no approval will show it (`ask --canary --yes`)."""
    from vpsagent.services.fleet import open_fleet
    from vpsagent.services.plans import record_plan, review

    if req.canary < 0 or (req.serial is not None and req.serial < 1):
        raise errors.InvalidInput("--canary must be 0 or more and --serial 1 or more")
    rev = review(ctx, req.path, selection=req.selection, mode="yes" if req.yes else "default")
    if rev.problems:
        from vpsagent.plans.schema import PlanInvalid

        raise PlanInvalid(rev.problems)
    if not rev.servers:
        raise errors.UsageError("the plan names no servers: choose them with -s NAME or -t TAG")
    max_fail = parse_max_fail(req.max_fail, len(rev.servers))
    _check_version(req, rev)
    emit = on_event or (lambda _e: None)
    if req.dry_run:
        # a preview, not an application: nothing is approved, run or recorded; a step the
        # policy denies still makes it exit 4, as the real apply would
        denied = _refusals(rev, interactive=True)
        return ApplyResult(rev, "refused" if denied else "dry_run",
                           int(errors.ExitCode.NEEDS_APPROVAL) if denied else 0,
                           [_planned(rev, n) for n in rev.servers], None, denied, dry_run=True)
    refused = _refusals(rev, interactive=approve is not None)
    if refused:
        _record_refusal(ctx, rev, "denied by the policy" if rev.denied else "needs approval nobody can give here")
        return _finish(ctx, req, rev, "refused", [], refused=refused)
    if show is not None and not rev.asks:
        show(rev)
    if rev.asks:
        assert approve is not None  # _refusals said so
        if not approve(rev):
            _record_refusal(ctx, rev, "declined by the user")
            return _finish(ctx, req, rev, "refused", [], refused=["declined by the user"])
    # what runs must be what was approved: read the file again
    if read_plan_bytes(req.path) != rev.plan.text.encode("utf-8"):
        raise errors.ApprovalRequired(f"{rev.plan.path} changed while it was being approved; nothing was run",
                                      hint="review it again with `vpsagent plan show`")
    record_plan(ctx, rev.plan, origin="apply")
    # the lock first (a busy server is exit 75 with no application recorded), then the record
    with open_fleet(ctx, rev.servers) as fleet, \
            fleet.lock("apply", wait_s=req.lock_wait, enabled=req.lock or req.lock_wait is not None):
        app_id = _start(ctx, req, rev)
        try:
            results = _rollout(fleet, rev, req, max_fail, emit)
        except (errors.Interrupted, KeyboardInterrupt):
            # the application must not look `running` forever; the server that was being changed
            # was not undone: say so, and leave the rest to the person who pressed Ctrl-C
            _finish(ctx, req, rev, "interrupted", [], refused=["interrupted (Ctrl-C): the server being changed "
                                                              "was not undone"], app_id=app_id,
                    code=int(errors.ExitCode.INTERRUPTED))
            raise
    return _finish(ctx, req, rev, _status(results), results, app_id=app_id)


def _record_refusal(ctx: Context, rev: PlanReview, why: str) -> None:
    """The steps that kept the plan from running, in the audit log as denied (never run), with the hash."""
    from vpsagent.db.audit import AuditLog
    from vpsagent.redact import Redactor
    from vpsagent.services.fleet import known_secrets

    who = ctx.identity()
    audit = AuditLog(ctx.engine, redact=Redactor(known_secrets(ctx.settings)).redact, user_id=who.user_id,
                     user_email=who.email, token_name=who.token_name)
    for j in rev.denied or rev.asks:
        what = f"{'undo of ' if j.undo else ''}step {j.step}"
        audit.record_decision(server=j.server, command=j.action, source=SOURCE, decision=Decision.DENY.value,
                              reason=f"plan sha256:{rev.plan.hash} {what}: {j.reason} ({why})", rule=j.rule)


def _planned(rev: PlanReview, server: str) -> ServerApply:
    rec = ServerApply(server, ApplyOutcome.PLANNED)
    for step in rev.plan.steps:
        if any(j.server == server for j in rev.for_step(step.index)):
            rec.steps.append(StepRun(step.index, step.name, step.action, "planned"))
    return rec


def _status(results: Sequence[ServerApply]) -> str:
    outcomes = {r.outcome for r in results}
    for o, status in ((ApplyOutcome.INTERRUPTED, "interrupted"), (ApplyOutcome.UNREACHABLE, "unreachable"),
                      (ApplyOutcome.UNDO_FAILED, "failed"), (ApplyOutcome.FAILED, "failed")):
        if o in outcomes:
            return status
    return "applied"


def _rollout(fleet: Fleet, rev: PlanReview, req: ApplyRequest, max_fail: int, emit: OnEvent) -> list[ServerApply]:
    """Canary first, then batches; stop starting servers after a failure (see --max-fail)."""
    from vpsagent.services.deploy import batches

    results = {n: ServerApply(n) for n in rev.servers}
    failures = 0
    groups = batches(rev.servers, req.canary, req.serial)
    cancel = threading.Event()
    for n, group in enumerate(groups):
        pool = ThreadPoolExecutor(max_workers=len(group))
        try:
            done = list(pool.map(lambda name: _ServerApply(fleet, rev, name, emit, cancel).run(), group))
        except KeyboardInterrupt:
            cancel.set()
            fleet.interrupt()
            pool.shutdown(wait=False, cancel_futures=True)
            raise errors.Interrupted("interrupted: apply was stopped") from None
        pool.shutdown()
        for r in done:
            results[r.server] = r
            failures += r.outcome != ApplyOutcome.APPLIED
        unreachable = any(r.outcome == ApplyOutcome.UNREACHABLE for r in done)
        why = ("the canary failed" if n == 0 and req.canary and failures
               else "a server was unreachable" if unreachable
               else f"{plural(failures, 'server')} failed (--max-fail {req.max_fail})" if failures > max_fail else None)
        if why:
            for later in groups[n + 1:]:
                for name in later:
                    results[name].error = f"not touched: {why}"
                    emit(ApplyEvent("skip", name, f"not touched: {why}", ok=False))
            break
    return [results[n] for n in rev.servers]


class _ServerApply:
    """One server: its steps in order, each followed by its checks; undo on failure."""

    def __init__(self, fleet: Fleet, rev: PlanReview, server: str, emit: OnEvent, cancel: threading.Event):
        self.fleet, self.rev, self.server, self.emit, self.cancel = fleet, rev, server, emit, cancel
        self.plan: ChangePlan = rev.plan
        self.res = ServerApply(server)
        self.backups: dict[int, str | None] = {}  # write steps done: their backup (None: a new file)

    def reason(self, what: str) -> str:
        return f"plan sha256:{self.plan.hash} {what}"

    def clean(self, text: str) -> str:
        """Server output in a message (stderr, a check's finding): redacted before it is shown or stored."""
        return self.fleet.redactor.redact(text)

    def run(self) -> ServerApply:
        # the steps whose selector takes this server (judged for it)
        steps = [s for s in self.plan.steps if any(j.server == self.server for j in self.rev.for_step(s.index))]
        self.emit(ApplyEvent("server", self.server, plural(len(steps), "step")))
        completed: list[ChangeStep] = []
        try:
            for step in steps:
                run = StepRun(step.index, step.name, step.action)
                self.res.steps.append(run)
                ok = self.step(step, run)
                if run.status == "ok":
                    completed.append(step)
                if not ok:
                    self.res.outcome = ApplyOutcome.FAILED
                    self.undo(completed)
                    return self.res
        except errors.Unreachable as exc:
            self.res.outcome, self.res.error = ApplyOutcome.UNREACHABLE, exc.line()
            self.emit(ApplyEvent("server", self.server, f"unreachable: {exc.line()}", ok=False))
            return self.res
        self.res.outcome = ApplyOutcome.APPLIED
        return self.res

    def step(self, step: ChangeStep, run: StepRun) -> bool:
        verdict = next(j for j in self.rev.for_step(step.index) if j.server == self.server)
        why = self.reason(f"step {step.index}: {verdict.reason}")
        if step.write is not None:
            ok, run.exit_code, run.message = self.write(step, why)
        else:
            result = self.fleet.run(self.server, step.command or "", source=SOURCE, decision=Decision.ALLOW.value,
                                    decision_reason=why, timeout=step.timeout)
            ok, run.exit_code, run.message = result.ok, result.exit_code, self.clean(_why_failed(result))
        run.status = "ok" if ok else "failed"
        self.emit(ApplyEvent("step", self.server, f"step {step.index}: {step.name}"
                             + ("" if ok else f" — {run.message}"), ok=ok))
        if not ok or step.verify is None:
            return ok
        return self.verify(step, run)

    def write(self, step: ChangeStep, why: str) -> tuple[bool, int | None, str]:
        """Write the file; an existing one is first copied next to it (`cp -p`: its owner and mode
        too), which is how a write step without `undo` is undone."""
        import shlex
        import time

        assert step.write is not None
        w = step.write
        host = self.fleet.host(self.server)
        backup = f"{w.path}.vpsagent-{time.strftime('%Y%m%d%H%M%S')}.bak"
        q, qb = shlex.quote(w.path), shlex.quote(backup)

        def write() -> int:
            r = host.run(f"if [ -e {q} ]; then cp -p -- {q} {qb} && echo backed-up; fi", timeout=60)
            if not r.ok:
                raise OSError(f"backup to {backup} failed: {(r.stderr_text() or r.error or '').strip()[:200]}")
            self.backups[step.index] = backup if "backed-up" in r.stdout_text() else None
            host.write_file(w.path, w.content.encode(), w.mode)
            return len(w.content.encode())

        try:
            self.fleet.operation(self.server, w.label(), write, source=SOURCE, size=lambda n: n,
                                 decision=Decision.ALLOW.value, decision_reason=why)
        except errors.Unreachable:
            raise
        except (OSError, errors.VpsAgentError) as exc:
            return False, 1, self.clean(getattr(exc, "message", None) or str(exc))
        return True, 0, ""

    def undo_command(self, step: ChangeStep) -> str | None:
        """The step's `undo`; for a write step without one, restoring what was there before."""
        if step.undo or step.write is None or step.index not in self.backups:
            return step.undo
        import shlex

        backup = self.backups[step.index]
        path = shlex.quote(step.write.path)
        return f"mv -f -- {shlex.quote(backup)} {path}" if backup else f"rm -f -- {path}"

    def verify(self, step: ChangeStep, run: StepRun) -> bool:
        from vpsagent.plans.runner import run_plan

        assert step.verify is not None
        why = self.reason(f"verify step {step.index}")

        def execute(host: object, command: str, timeout: float, sudo: bool) -> CommandResult:
            return self.fleet.run(self.server, command, source=SOURCE, sudo=sudo, timeout=timeout,
                                  decision=Decision.ALLOW.value, decision_reason=why)

        res = run_plan(step.verify, [self.server], open_host=self.fleet.host, execute=execute, cancel=self.cancel)
        sr = res.servers[0]
        if sr.status == "unreachable":
            raise errors.Unreachable(sr.error or f"{self.server} is unreachable")
        failed = [s for s in sr.steps if not s.ok]
        run.verify = "failed" if failed else "passed"
        if failed:
            run.message = self.clean("; ".join(f"verify {s.name}: {s.message}" for s in failed))
        self.emit(ApplyEvent("verify", self.server, f"verify step {step.index}: {run.verify}"
                             + (f" — {run.message}" if failed else ""), ok=not failed))
        return not failed

    def undo(self, completed: list[ChangeStep]) -> None:
        for step in reversed(completed):
            command = self.undo_command(step)
            if not command:
                self.res.undone.append(UndoRun(step.index, "", "none", message="the step has no undo"))
                self.emit(ApplyEvent("undo", self.server, f"step {step.index} has no undo: left as it is", ok=False))
                continue
            try:
                result = self.fleet.run(self.server, command, source=SOURCE, decision=Decision.ALLOW.value,
                                        decision_reason=self.reason(f"undo step {step.index}"), timeout=step.timeout)
            except errors.Unreachable as exc:
                self.res.undone.append(UndoRun(step.index, command, "failed", message=exc.line()))
                self.res.outcome = ApplyOutcome.UNDO_FAILED
                return
            u = UndoRun(step.index, command, "ok" if result.ok else "failed", result.exit_code,
                        "" if result.ok else self.clean(_why_failed(result)))
            self.res.undone.append(u)
            if not result.ok:
                self.res.outcome = ApplyOutcome.UNDO_FAILED
            self.emit(ApplyEvent("undo", self.server, f"undo step {step.index}: {command}"
                                 + ("" if result.ok else f" — {u.message}"), ok=result.ok))


def _why_failed(result: CommandResult) -> str:
    if result.ok:
        return ""
    if result.exit_code is None:
        return result.error or result.status
    err = result.stderr_text().strip().splitlines()
    return f"exit {result.exit_code}" + (f": {err[-1][:200]}" if err else "")


# --------------------------------------------------------------------------- records


def _start(ctx: Context, req: ApplyRequest, rev: PlanReview) -> int:
    from vpsagent.db.engine import session_scope
    from vpsagent.db.models import PlanApplication
    from vpsagent.services.plans import _os_user, abspath

    who = ctx.identity()
    with session_scope(ctx.engine) as s:
        row = PlanApplication(plan_hash=rev.plan.hash, path=abspath(rev.plan.path)[:2048], status="running",
                              dry_run=req.dry_run, servers=list(rev.servers), options=_options(req),
                              conversation_id=req.conversation_id, user_id=who.user_id, user_email=who.email,
                              os_user=_os_user())
        s.add(row)
        s.flush()
        assert row.id is not None
        return row.id


def _options(req: ApplyRequest) -> JSONObject:
    return {"canary": req.canary, "serial": req.serial, "max_fail": req.max_fail, "yes": req.yes,
            "dry_run": req.dry_run}


def _finish(ctx: Context, req: ApplyRequest, rev: PlanReview, status: str, results: list[ServerApply], *,
            refused: list[str] | None = None, app_id: int | None = None, code: int | None = None) -> ApplyResult:
    from vpsagent.db.engine import session_scope
    from vpsagent.db.models import PlanApplication, utcnow

    if code is not None:
        pass
    elif refused:
        code = int(errors.ExitCode.NEEDS_APPROVAL)
    else:
        code = exit_code_for(r.outcome.value for r in results)
    if app_id is None:
        app_id = _start(ctx, req, rev)
    with session_scope(ctx.engine) as s:
        row = s.get(PlanApplication, app_id)
        assert row is not None
        row.status, row.exit_code, row.finished_at = status, code, utcnow()
        row.results = {r.server: r.as_dict() for r in results}
        row.error = "; ".join(refused)[:4000] if refused else None
        s.add(row)
    return ApplyResult(rev, status, code, results, app_id, list(refused or []), dry_run=req.dry_run)
