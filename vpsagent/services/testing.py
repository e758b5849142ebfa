"""`vpsagent test`: load plans, pick servers, run, record, report.

Plain functions over (settings, engine, inputs, callbacks). Everything that can be
wrong with the input (plans, variables, server names) is checked before the first
command runs, so an invalid invocation runs nothing and records nothing.
"""

from __future__ import annotations

import getpass
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from vpsagent.db.inventory import ServerRecord
from vpsagent.errors import Interrupted, InvalidInput, NotFound, UsageError
from vpsagent.jsondata import JSON, JSONObject
from vpsagent.outcomes import exit_code_for
from vpsagent.plans import reporters
from vpsagent.plans.runner import Execute, OnEvent, PlanResult, StepResult, run_plan
from vpsagent.plans.schema import Plan, PlanInvalid, Problem, load_plan, validate_text
from vpsagent.remote.fanout import DEFAULT_FORKS as FANOUT_FORKS
from vpsagent.services.context import Context
from vpsagent.services.fleet import Fleet, Selection
from vpsagent.userfiles import DEFAULT_MAX_BYTES

if TYPE_CHECKING:
    import anthropic
    from sqlalchemy.engine import Engine

    from vpsagent.agent.loop import AgentEvent
    from vpsagent.db.models import TestRun
    from vpsagent.services.ask import AskRequest, AskResult

# How the agent's work is shown while it diagnoses or writes a plan (render.agent.Display).
OnAgentEvent = Callable[["AgentEvent"], None]

ENV_PREFIX = "VPSAGENT_VAR_"
DEFAULT_FORKS = FANOUT_FORKS  # as `vpsagent run`: one default for "servers at once"


@dataclass
class ValidateResult:
    plans: list[JSONObject] = field(default_factory=list)  # name, path, steps
    problems: list[Problem] = field(default_factory=list)
    # what could not be held against the inventory (no database): said, not failed
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class TestRunOutcome:
    __test__ = False  # not a pytest class
    results: list[PlanResult]
    exit_code: int

    @property
    def summary(self) -> dict[str, int]:
        return reporters.totals(self.results)


# ---------------------------------------------------------------------------
# input


def parse_vars(pairs: Sequence[str], env: Mapping[str, str] | None = None) -> dict[str, str]:
    """VPSAGENT_VAR_<name> from the environment, then `--var name=value` (flags win)."""
    env = os.environ if env is None else env
    out: dict[str, str] = {}
    for key, value in env.items():
        if key.startswith(ENV_PREFIX) and len(key) > len(ENV_PREFIX):
            out[key[len(ENV_PREFIX):]] = value
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise InvalidInput(f"bad --var {pair!r}: use --var name=value")
        out[name] = value
    return out


def check_flag_vars(plans: Sequence[Plan], names: Sequence[str]) -> None:
    """A `--var` that no plan declares or uses is a typo, not a no-op: say so (exit 2).

    Only flags are checked: VPSAGENT_VAR_* may be set for many plans at once.
    """
    from vpsagent.plans.templating import references

    used: set[str] = set()
    for plan in plans:
        used |= set(plan.vars)
        try:
            used |= set(references(Path(plan.path).read_text(encoding="utf-8", errors="replace")))
        except (OSError, ValueError):
            pass
    unknown = [n for n in names if n not in used]
    if unknown:
        known = ", ".join(sorted(used)) or "none"
        raise InvalidInput(f"--var {unknown[0]} is not used by any plan given (their variables: {known})")


def load_plans(paths: Sequence[str], overrides: Mapping[str, JSON], *,
               max_bytes: int = DEFAULT_MAX_BYTES) -> list[Plan]:
    """Every plan, or PlanInvalid carrying the problems of all of them."""
    plans, problems = [], []
    for p in paths:
        try:
            plans.append(load_plan(p, dict(overrides), max_bytes=max_bytes))
        except PlanInvalid as e:
            problems += e.problems
    if problems:
        raise PlanInvalid(problems)
    return plans


def validate(paths: Sequence[str], overrides: Mapping[str, JSON],
             inventory: Mapping[str, ServerRecord] | None = None, *,
             max_bytes: int = DEFAULT_MAX_BYTES) -> ValidateResult:
    """Every problem in the plans. With the inventory, an unknown server or a tag no server
    carries is a problem too; without one (no database here) it is a warning."""
    res = ValidateResult()
    for p in paths:
        try:
            plan = load_plan(p, dict(overrides), max_bytes=max_bytes)
        except PlanInvalid as e:
            res.problems += e.problems
            continue
        res.plans.append({"name": plan.name, "path": plan.path, "steps": len(plan.steps),
                          "servers": plan.servers, "tags": plan.tags})
        if inventory is not None:
            res.problems += target_problems(inventory, plan)
        else:
            res.warnings += [Problem(plan.path, line, col, f"{what}: not checked, there is no database here")
                             for what, (line, col) in _targets(plan)]
    return res


def inventory_if_any(ctx: Context) -> dict[str, ServerRecord] | None:
    """The inventory, or None where there is no database to read it from (a SQLite file
    not created yet, a database that cannot be reached): validating creates nothing."""
    from vpsagent.db.engine import database_exists
    from vpsagent.db.inventory import load_inventory
    from vpsagent.errors import DatabaseError

    if not database_exists(ctx.settings.database_url):
        return None
    try:
        return load_inventory(ctx.engine)
    except DatabaseError:
        return None


def _targets(plan: Plan) -> list[tuple[str, tuple[int, int]]]:
    return ([(f"server {n!r}", plan.server_marks.get(n, (1, 1))) for n in plan.servers]
            + [(f"tag {t!r}", plan.tag_marks.get(t, (1, 1))) for t in plan.tags])


def target_problems(inventory: Mapping[str, ServerRecord], plan: Plan) -> list[Problem]:
    """The plan's servers that are not in the inventory, and its tags no server carries."""
    problems = []
    for n in plan.servers:
        if n not in inventory:
            line, col = plan.server_marks.get(n, (1, 1))
            problems.append(Problem(plan.path, line, col, f"unknown server {n!r} "
                                    "(`vpsagent servers list` shows the inventory)"))
    for t in plan.tags:
        if not any(t in rec.tags for rec in inventory.values()):
            line, col = plan.tag_marks.get(t, (1, 1))
            problems.append(Problem(plan.path, line, col, f"no server has tag {t!r}"))
    return problems


def resolve_targets(inventory: Mapping[str, ServerRecord], plans: Sequence[Plan], names: Sequence[str],
                    tags: Sequence[str]) -> list[list[str]]:
    """Servers for each plan: -s/-t override the plan's own servers/tags."""
    from vpsagent.services.fleet import select

    if names or tags:
        chosen = select(inventory, Selection.of(names, tags))
        return [chosen for _ in plans]
    out, problems = [], []
    for plan in plans:
        problems += target_problems(inventory, plan)
        if not plan.servers and not plan.tags:
            problems.append(Problem(plan.path, 1, 1, "the plan names no servers: add "
                                    "`servers: [NAME]` or run it with -s NAME / -t TAG"))
        out.append(plan.servers + [n for n, rec in inventory.items()
                                   if n not in plan.servers and set(rec.tags) & set(plan.tags)])
    if problems:
        raise PlanInvalid(problems)
    return out


# ---------------------------------------------------------------------------
# running


def exit_code(results: Sequence[PlanResult]) -> int:
    return exit_code_for(s.status for r in results for s in r.servers)


def run_tests(
    ctx: Context,
    paths: Sequence[str],
    *,
    servers: Sequence[str] = (),
    tags: Sequence[str] = (),
    overrides: Mapping[str, JSON] | None = None,
    flag_vars: Sequence[str] = (),
    forks: int | None = None,
    fail_fast: bool | None = None,
    on_event: OnEvent | None = None,
    explain: bool = False,
    on_agent_event: OnAgentEvent | None = None,
    execute: Execute | None = None,
    connect_timeout: float | None = None,
    lock: bool = False,
    lock_wait: float | None = None,
) -> TestRunOutcome:
    from vpsagent.db.inventory import load_inventory
    from vpsagent.services.fleet import open_fleet

    forks = DEFAULT_FORKS if forks is None else forks
    if forks < 1:
        raise UsageError("--forks must be at least 1")
    overrides = dict(overrides or {})
    plans = load_plans(paths, overrides, max_bytes=ctx.settings.max_file_bytes)
    check_flag_vars(plans, flag_vars)
    inventory = load_inventory(ctx.engine)
    targets = resolve_targets(inventory, plans, servers, tags)
    names = list(dict.fromkeys(n for chosen in targets for n in chosen))
    # one connection per server, reused; the audit log never stores a credential a step echoes
    with open_fleet(ctx, names, inventory=inventory, connect_timeout=connect_timeout) as fleet, \
            fleet.lock("test run", wait_s=lock_wait, enabled=lock or lock_wait is not None):
        results = [_run_one(ctx, fleet, plan, chosen, overrides=overrides, forks=forks, fail_fast=fail_fast,
                            on_event=on_event, execute=execute, explain=explain, on_agent_event=on_agent_event)
                   for plan, chosen in zip(plans, targets, strict=True)]
    return TestRunOutcome(results, exit_code(results))


def _run_one(ctx: Context, fleet: Fleet, plan: Plan, names: list[str], *, overrides: dict[str, JSON], forks: int,
             fail_fast: bool | None, on_event: OnEvent | None, execute: Execute | None, explain: bool,
             on_agent_event: OnAgentEvent | None) -> PlanResult:
    run_id = _start_run(ctx.engine, plan, names, ctx.identity().user_id)
    cancel = threading.Event()
    partial = PlanResult(plan=plan, run_id=run_id)  # what completed, if the run is cut
    try:
        result = run_plan(plan, names, open_host=fleet.host, execute=execute or fleet.executor("test", test_run_id=run_id),
                          overrides=overrides, forks=forks, fail_fast=fail_fast,
                          on_event=on_event, cancel=cancel, on_cancel=fleet.interrupt, result=partial,
                          redact=lambda text: fleet.redactor.redact(text))
    except KeyboardInterrupt:
        cancel.set()
        fleet.interrupt()
        _store_cut_run(ctx.engine, run_id, partial, "interrupted")
        raise Interrupted("interrupted: the test run was stopped") from None
    except BrokenPipeError:
        # the reader of the progress lines or the report went away (`... | head`): the
        # steps that ran are kept, and the run is `interrupted`, not a vpsagent error
        cancel.set()
        fleet.interrupt()
        _store_cut_run(ctx.engine, run_id, partial, "interrupted")
        raise
    except Exception:
        # e.g. the audit log cannot be written (then nothing more runs): never leave the
        # run looking "running"
        cancel.set()
        _store_cut_run(ctx.engine, run_id, partial, "error")
        raise
    result.run_id = run_id
    if explain and result.status != "passed":
        explain_failures(ctx, result, on_event=on_agent_event, fleet=fleet)
        for srv in result.servers:  # the model's answers, like everything else in the reports
            for st in srv.steps:
                st.explanation = fleet.redactor.redact(st.explanation) if st.explanation else st.explanation
    _finish_run(ctx.engine, run_id, result)
    return result


# ---------------------------------------------------------------------------
# recording (test_runs / test_steps)


# Recording uses the Core tables (db/tables.py), not the SQLModel models: `test run` is a
# hot path, and importing sqlmodel/pydantic and the models cost ~0.15 s of every run.


def _start_run(engine: Engine, plan: Plan, servers: list[str], user_id: int | None = None) -> int:
    from sqlalchemy import insert

    from vpsagent.db.engine import transaction
    from vpsagent.db.tables import test_runs as t

    with transaction(engine) as conn:
        row_id = conn.execute(insert(t).values(
            plan_name=plan.name[:500], plan_path=plan.path[:2048], status="running", servers=list(servers),
            passed=0, failed=0, skipped=0, errors=0, os_user=_os_user(), user_id=user_id,
            started_at=datetime.now(UTC)).returning(t.c.id)).scalar_one()
    return int(row_id)


def _os_user() -> str | None:
    try:
        return getpass.getuser()[:100]
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return None


def _interrupt_run(engine: Engine, run_id: int, status: str = "interrupted") -> None:
    from sqlalchemy import update

    from vpsagent.db.engine import transaction
    from vpsagent.db.tables import test_runs as t

    with transaction(engine) as conn:
        conn.execute(update(t).where(t.c.id == run_id).values(status=status, finished_at=datetime.now(UTC)))


def _store_cut_run(engine: Engine, run_id: int, partial: PlanResult, status: str) -> None:
    """A run stopped half-way: its completed steps and `status`; at worst only the status
    (the database may be what failed)."""
    try:
        _finish_run(engine, run_id, partial, status=status)
    except Exception:  # noqa: BLE001 - already failing; the first error is the one to report
        try:
            _interrupt_run(engine, run_id, status=status)
        except Exception:  # noqa: BLE001
            pass


def _clip(text: str | None, limit: int) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[: limit - 20] + "\n[... cut ...]"


def _finish_run(engine: Engine, run_id: int, result: PlanResult, *, status: str | None = None) -> None:
    from sqlalchemy import insert, update

    from vpsagent.db.engine import transaction
    from vpsagent.db.tables import test_runs, test_steps

    # NUL bytes are legal in output but not in PostgreSQL text columns
    def clean(text: str | None, limit: int) -> str | None:
        return _clip(text.replace("\x00", ""), limit) if text is not None else None

    now = datetime.now(UTC)
    steps = [{
        "run_id": run_id, "server": srv.server[:200], "seq": st.seq, "name": st.name[:500], "kind": st.kind,
        "status": st.status, "command": clean(st.command, 20000), "exit_code": st.exit_code,
        "attempts": st.attempts, "duration_ms": int(st.duration_s * 1000), "expected": clean(st.expected, 4000),
        "actual": clean(st.actual, 4000), "message": clean(st.message, 4000),
        "stdout_excerpt": clean(st.stdout, 16384), "stderr_excerpt": clean(st.stderr, 16384),
        "explanation": clean(st.explanation, 20000), "started_at": now,
    } for srv in result.servers for st in list(srv.steps)]  # a cut run's workers may still be finishing a step
    with transaction(engine) as conn:
        if steps:
            conn.execute(insert(test_steps), steps)
        conn.execute(update(test_runs).where(test_runs.c.id == run_id).values(
            status=status or result.status, passed=result.count("passed"), failed=result.count("failed"),
            skipped=result.count("skipped"), errors=result.count("error"), finished_at=now,
            duration_ms=int(result.duration_s * 1000)))


# ---------------------------------------------------------------------------
# history


def _run_dict(row: TestRun) -> JSONObject:
    return {
        "id": row.id, "plan": row.plan_name, "path": row.plan_path, "status": row.status,
        "servers": list(row.servers or []), "passed": row.passed, "failed": row.failed,
        "errors": row.errors, "skipped": row.skipped, "os_user": row.os_user,
        "started_at": row.started_at.isoformat() if row.started_at else None,
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
        "duration_ms": row.duration_ms,
    }


def history(engine: Engine, *, plan: str | None = None, limit: int = 20) -> list[JSONObject]:
    from sqlmodel import col, select

    from vpsagent.db.engine import session_scope
    from vpsagent.db.models import TestRun

    if limit < 1:
        raise UsageError("--limit must be at least 1")
    with session_scope(engine) as s:
        q = select(TestRun).order_by(col(TestRun.id).desc()).limit(limit)
        if plan:
            q = q.where(TestRun.plan_name == plan)
        return [_run_dict(r) for r in s.exec(q).all()]


def show_run(engine: Engine, run_id: int) -> JSONObject:
    from sqlmodel import col, select

    from vpsagent.db.engine import session_scope
    from vpsagent.db.models import TestRun, TestStep

    with session_scope(engine) as s:
        row = s.get(TestRun, run_id)
        if row is None:
            raise NotFound(f"no test run {run_id}", hint="`vpsagent test history` lists runs")
        out = _run_dict(row)
        steps = s.exec(select(TestStep).where(TestStep.run_id == run_id)
                       .order_by(col(TestStep.server), col(TestStep.seq))).all()
        out["steps"] = [{
            "server": st.server, "seq": st.seq, "name": st.name, "kind": st.kind,
            "status": st.status, "command": st.command, "exit_code": st.exit_code,
            "attempts": st.attempts, "duration_ms": st.duration_ms, "expected": st.expected,
            "actual": st.actual, "message": st.message, "stdout": st.stdout_excerpt,
            "stderr": st.stderr_excerpt, "explanation": st.explanation,
        } for st in steps]
        return out


# ---------------------------------------------------------------------------
# AI: --explain and `test generate` (the `ask` engine, read-only)

EXPLAIN_MAX_STEPS = 10  # per run: each diagnosis is a conversation with the model
EXPLAIN_TURNS = 8
EXPLAIN_EXCERPT = 4000


def _tail(text: str, limit: int) -> str:
    return text if len(text) <= limit else "[... cut ...]\n" + text[-limit:]


def _explain_prompt(plan: Plan, server: str, st: StepResult) -> str:
    return "\n".join([
        f"A step of the vpsagent test plan {plan.name!r} ({plan.path}) failed on server "
        f"{server!r}. Find out why, using read-only commands on that server only; do not "
        "change anything. Answer in at most 12 lines: what is wrong, the evidence "
        "(commands and what they showed), and the most likely fix.",
        "",
        f"Step {st.seq}: {st.name} (kind {st.kind})",
        f"Command: {st.command or st.description}",
        f"Expected: {st.expected}",
        f"Actual: {st.actual}",
        f"Failure: {st.message}",
        "The step's output (the end of stdout and stderr) is attached below.",
    ])


def _explain_context(st: StepResult) -> str:
    # Passed as context, not in the prompt: server output is untrusted and `ask` redacts
    # context with every credential in scope before the model (or the transcript) sees it.
    return "\n".join(["stdout (end):", _tail(st.stdout, EXPLAIN_EXCERPT) or "(empty)",
                      "stderr (end):", _tail(st.stderr, EXPLAIN_EXCERPT) or "(empty)"])


def explain_failures(ctx: Context, result: PlanResult, *, on_event: OnAgentEvent | None = None,
                     client: anthropic.Anthropic | None = None, fleet: Fleet | None = None) -> int:
    """Attach a read-only AI diagnosis to each failed step; returns how many were explained.

    The diagnosis starts from evidence: the support collectors and analyzers run once on
    each server with a failed step, and their findings go to the model with the step.
    A diagnosis that cannot be had (AI error, budget) is noted on the step; it never
    changes the test result or the exit code.
    """
    from vpsagent.errors import VpsAgentError
    from vpsagent.services.ask import AskRequest, ask

    done = 0
    for srv in result.servers:
        if srv.status == "unreachable":
            continue
        evidence = _support_evidence(ctx, fleet, srv.server) if any(
            st.status in ("failed", "error") for st in srv.steps) else ""
        for st in srv.steps:
            if st.status not in ("failed", "error"):
                continue
            if done >= EXPLAIN_MAX_STEPS:
                st.explanation = f"not diagnosed: --explain stops after {EXPLAIN_MAX_STEPS} steps"
                continue
            req = AskRequest(prompt=_explain_prompt(result.plan, srv.server, st),
                             context=_explain_context(st) + evidence, servers=[srv.server], mode="read_only",
                             kind="testing", max_turns=EXPLAIN_TURNS,
                             title=f"explain: {result.plan.name} @ {srv.server}, step {st.seq}: {st.name}")
            try:
                answer = ask(ctx, req, on_event=on_event, client=client, fleet=fleet)
                st.explanation = answer.answer.strip() or "(the model gave no diagnosis)"
            except VpsAgentError as e:
                # the message alone: its hint is for `ask` (--continue), which a test run has not
                st.explanation = f"diagnosis unavailable: {e.message}"
            done += 1
    return done


def _support_evidence(ctx: Context, fleet: Fleet | None, server: str) -> str:
    """What `vpsagent support` would find on `server`, for the model."""
    from vpsagent.services import support

    return support.evidence_for(ctx, fleet, server)[1] if fleet is not None else ""


def _ask_for_plan(ctx: Context, req: AskRequest, on_event: OnAgentEvent | None,
                  client: anthropic.Anthropic | None) -> AskResult:
    """`ask`, with its failures pointing at the stored conversation: `test generate` has
    no --continue to resume it with."""
    from vpsagent.errors import AIServiceError, BudgetExceeded
    from vpsagent.services.ask import ask

    try:
        return ask(ctx, req, on_event=on_event, client=client)
    except (AIServiceError, BudgetExceeded) as exc:
        conv = exc.data.get("conversation_id")
        exc.hint = f"what was said so far: vpsagent conversations show {conv}; run test generate again" if conv \
            else "run test generate again"
        raise


GENERATE_TURNS = 20

GENERATE_GUIDE = """\
Write a vpsagent test plan (YAML) for server {server!r} that checks: {request}

First look at the server with read-only commands (run_command) to learn what is really
there: services, ports, packages, versions, files. Then answer with the complete plan in
ONE ```yaml fenced block and nothing after it. The plan must pass on the server as it is
now, if the server is healthy.

Format (keys not listed here are errors):
name: short name                     # required
description: one line
servers: [{server}]
vars: {{name: value}}                # used as "{{{{ name }}}}" in any string
timeout: 30s                         # per step default; durations: 500ms, 30s, 2m, 1h
fail_fast: false
steps:                               # each step has exactly ONE kind key below
  - name: what it proves             # optional
    run: shell command               # kind run
    expect:                          # only with run
      exit: 0                        # or a list [0, 1]
      stdout: {{contains: text}}       # or not_contains, equals, matches (regex), lt, le, gt, ge
      stderr: text                   # a plain string means contains
    capture: {{var: 'regex (group)'}}  # only with run: one group from stdout into a variable
    timeout: 10s
    retry: {{attempts: 3, interval: 2s}}   # or eventually: 60s (not both)
    sudo: false
    skip: false                      # or a reason string
  - http: {{url: "http://127.0.0.1:80/", from: server, method: GET, status: 200,
           body_contains: text, headers: {{Name: value}}, response_headers: {{name: part}},
           insecure: false, timeout: 10s}}
  - file: {{path: /etc/x, exists: true, type: file, mode: "0644", owner: root, group: root,
           contains: text, not_contains: text}}
  - port: {{port: 443, listening: true, protocol: tcp}}
  - service: {{name: nginx, active: true, enabled: true}}
  - package: {{name: nginx, installed: true, version: ">=1.18"}}
  - process: {{name: nginx, running: true}}
"""


@dataclass
class GenerateResult:
    text: str
    name: str
    steps: int
    attempts: int
    conversation_id: int
    path: str | None = None


def extract_yaml(answer: str) -> str:
    blocks = re.findall(r"```(?:ya?ml)?[ \t]*\n(.*?)```", answer, re.DOTALL)
    return (blocks[-1] if blocks else answer).strip() + "\n"


def generate_plan(ctx: Context, server: str, request: str, *, output: str | None = None,
                  on_event: OnAgentEvent | None = None, client: anthropic.Anthropic | None = None) -> GenerateResult:
    """Claude inspects `server` read-only and writes a plan; validated, one retry on errors."""
    from vpsagent.db.inventory import load_record
    from vpsagent.errors import Failure
    from vpsagent.services.ask import AskRequest

    if not request.strip():
        raise InvalidInput("say what the plan should check, e.g. \"nginx serves the site\"")
    load_record(ctx.engine, server)  # unknown server: exit 2 before any AI call
    label = output or "generated-plan.yaml"
    req = AskRequest(prompt=GENERATE_GUIDE.format(server=server, request=request.strip()),
                     servers=[server], mode="read_only", kind="testing", max_turns=GENERATE_TURNS,
                     title=f"test generate on {server}: {request.strip().splitlines()[0]}")
    res = _ask_for_plan(ctx, req, on_event, client)
    text = extract_yaml(res.answer)
    plan, problems = validate_text(text, label)
    attempts = 1
    if problems:
        attempts = 2
        listing = "\n".join(str(p) for p in problems)
        fix = AskRequest(
            prompt=("That plan is invalid; vpsagent reported:\n" + listing + "\n\nReply with the "
                    "corrected complete plan in ONE ```yaml fenced block."),
            servers=[server], mode="read_only", kind="testing", max_turns=GENERATE_TURNS,
            conversation_id=res.conversation_id)
        res = _ask_for_plan(ctx, fix, on_event, client)
        text = extract_yaml(res.answer)
        plan, problems = validate_text(text, label)
        if problems:
            raise Failure(
                f"the generated plan is still invalid after one retry ({len(problems)} "
                f"problem{'s' if len(problems) != 1 else ''}); nothing was written",
                hint=f"see conversation {res.conversation_id}: vpsagent conversations show "
                     f"{res.conversation_id}",
                data={"problems": [p.to_dict() for p in problems], "text": text})
    assert plan is not None
    return GenerateResult(text=text, name=plan.name, steps=len(plan.steps), attempts=attempts,
                          conversation_id=res.conversation_id, path=output)
