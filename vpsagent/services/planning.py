"""`ask --plan`: Claude investigates read-only, then writes a change plan instead of acting.

The conversation runs in the read-only mode (every command judged, read-only ones inside the
server's read-only sandbox where it has one), so nothing on any server changes while
planning. The plan arrives through a dedicated tool, `submit_plan`, whose input IS the plan:
the model cannot smuggle free text into the file. The input is turned into the documented
YAML (plans/changes.py) and validated like a file; problems go back to the model as the
tool's error, so it can fix them. The plan is written only when valid.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from vpsagent import errors
from vpsagent.jsondata import JSON, JSONObject
from vpsagent.plans.changes import STEP_KEYS, WRITE_KEYS, dump_yaml, plan_document, validate_bytes
from vpsagent.services.ask import AskRequest, AskResult
from vpsagent.services.context import Context
from vpsagent.wording import plural

if TYPE_CHECKING:
    import anthropic

    from vpsagent.agent.loop import AgentEvent
    from vpsagent.agent.tools import ApproveFn, ExtraTool
    from vpsagent.plans.schema import Plan
    from vpsagent.services.apply import ApplyResult
    from vpsagent.services.apply import ApproveFn as ApprovePlanFn
    from vpsagent.services.apply import OnEvent as OnApplyEvent
    from vpsagent.services.ask import OpenConversation
    from vpsagent.services.plans import PlanReview

_VERIFY_HELP = (
    "Test-plan steps (vpsagent's test-plan syntax), each a mapping with exactly one kind: "
    "{run: CMD, expect: {exit: 0, stdout: {contains: TEXT}}}, {service: {name: N, active: true}}, "
    "{port: {port: 443, listening: true}}, {package: {name: N, version: '>=1.2'}}, "
    "{file: {path: P, exists: true, contains: TEXT}}, {http: {url: U, status: 200}}, {process: {name: N}}."
)

SUBMIT_PLAN: JSONObject = {
    "name": "submit_plan",
    "description": (
        "Submit the change plan for the user's request. Call it once you have investigated with read-only "
        "commands. Its input IS the plan that will be reviewed and later applied by vpsagent without you: "
        "exact commands, why, what to expect, checks and undo. Nothing runs now."
    ),
    "input_schema": {
        "type": "object",
        "properties": {
            "steps": {
                "type": "array",
                "description": "The changes in order.",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "description": "Short name of the step."},
                        "servers": {"type": "array", "items": {"type": "string"},
                                    "description": "Servers this step is for (default: every server in scope)."},
                        "command": {"type": "string", "description": "The exact shell command (or give write)."},
                        "write": {"type": "object", "description": "A file to write instead of a command.",
                                  "properties": {"path": {"type": "string"}, "content": {"type": "string"},
                                                 "mode": {"type": "string"}},
                                  "required": ["path", "content"]},
                        "why": {"type": "string", "description": "Why this step is needed."},
                        "expect": {"type": "string", "description": "The expected effect, in words."},
                        "verify": {"type": "array", "items": {"type": "object"}, "description": _VERIFY_HELP},
                        "undo": {"type": "string", "description": "A command that reverses the step, if any."},
                    },
                    "required": ["why", "expect"],
                },
            },
        },
        "required": ["steps"],
    },
}

PLANNING_NOTE = (
    "You are PLANNING, not acting. Investigate with read-only commands only (changes are denied and "
    "nothing on a server may change now). Then call the submit_plan tool exactly once with the plan: "
    "exact commands, why, the expected effect, verify checks for every changing step, and an undo "
    "command where one exists. The plan is applied later by vpsagent on each server without you; it "
    "must work unattended (non-interactive flags, no prompts). After submit_plan accepts the plan, end "
    "with a short summary."
)


@dataclass
class PlanAskResult:
    ask: AskResult
    path: str
    hash: str
    steps: int
    attempts: int
    text: str = field(repr=False, default="")


def _check_writable(output: str) -> None:
    """Before any model call: a plan or test that cannot be written is found out now, not after."""
    import os

    parent = Path(output).expanduser().resolve().parent
    if Path(output).is_dir() or not parent.is_dir() or not os.access(parent, os.W_OK):
        raise errors.UsageError(f"cannot write {output}: "
                                f"{'it is a directory' if Path(output).is_dir() else f'{parent} is not a writable directory'}")


def _write(output: str, text: str) -> None:
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise errors.Failure(f"cannot write {output}: {exc.strerror}") from None


class _Submission:
    """The submit_plan tool for one conversation: checks the input, keeps the accepted plan."""

    def __init__(self, request: AskRequest, output: str, model: str, scope: Sequence[str]):
        self.request, self.output, self.model, self.scope = request, output, model, list(scope)
        self.conversation_id: int | None = None
        self.text: str | None = None
        self.attempts = 0

    def handle(self, data: JSONObject) -> tuple[str, bool]:
        self.attempts += 1
        if self.text is not None:
            return "a plan was already accepted; end with a short summary", True
        steps = data.get("steps")
        if not isinstance(steps, list) or not steps:
            return "error: steps must be a non-empty list of steps", True
        bad = self._scope_problems(steps)
        if bad:
            return "error: " + "; ".join(bad), True
        doc = plan_document(
            request=self.request.prompt.strip(), model=self.model, conversation_id=self.conversation_id,
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            # the selection as the user gave it (a continued conversation: its servers)
            servers=self.request.servers if self.request.servers or self.request.tags else self.scope,
            tags=self.request.tags, steps=[_step(s) for s in steps])
        text = dump_yaml(doc)
        plan, problems = validate_bytes(text.encode("utf-8"), Path(self.output).name)
        if problems or plan is None:
            listing = "\n".join(str(p) for p in problems)
            return (f"error: the plan is invalid; nothing was written. vpsagent reported (lines of the YAML "
                    f"it makes of your input):\n{listing}\n\nFix it and call submit_plan again.\n\n{text}"), True
        self.text = text
        return (f"plan accepted: {plural(len(plan.steps), 'step')}. It is written to {self.output} for review and will be "
                "applied later with `vpsagent apply`. End with a short summary for the user."), False

    def _scope_problems(self, steps: list[JSON]) -> list[str]:
        out = []
        for i, s in enumerate(steps, 1):
            if not isinstance(s, dict):
                out.append(f"step {i} must be an object")
                continue
            unknown = [k for k in s if k not in STEP_KEYS]
            if unknown:
                out.append(f"step {i}: unknown field(s) {', '.join(unknown)} (allowed: {', '.join(STEP_KEYS)})")
            servers = s.get("servers")
            if isinstance(servers, list):
                out += [f"step {i}: server {n!r} is not in scope ({', '.join(self.scope)})"
                        for n in servers if n not in self.scope]
        return out


def _step(raw: JSON) -> JSONObject:
    assert isinstance(raw, dict)
    step: JSONObject = {k: raw[k] for k in STEP_KEYS if k in raw}
    w = step.get("write")
    if isinstance(w, dict):
        step["write"] = {k: w[k] for k in WRITE_KEYS if k in w}
    return step


def ask_plan(ctx: Context, request: AskRequest, output: str, *, approve: ApproveFn | None = None,
             on_event: Callable[[AgentEvent], None] | None = None,
             client: anthropic.Anthropic | None = None) -> PlanAskResult:
    """Investigate read-only and write a plan to `output`; Failure (exit 1) when none was submitted."""
    from vpsagent.agent.tools import ExtraTool
    from vpsagent.services.ask import open_session, run_turn
    from vpsagent.services.plans import record_plan

    if not request.prompt.strip():
        raise errors.InvalidInput("the prompt is empty")
    _check_writable(output)
    if request.mode == "yes":
        ctx.notify("--yes approves nothing while planning: every change is denied until `vpsagent apply`")
    request.mode = "read_only"  # nothing changes while planning, whatever was asked for
    session = open_session(ctx, request, client=client)
    try:
        sub = _Submission(request, output, session.model, session.servers)
        sub.conversation_id = session.conversation_id
        tool: ExtraTool = ExtraTool(SUBMIT_PLAN, sub.handle)
        res = run_turn(session, request.prompt, context=request.context, max_turns=request.max_turns,
                       max_cost=request.max_cost, approve=approve, on_event=on_event, extra_tools=[tool],
                       system_note=PLANNING_NOTE)
    finally:
        session.close()
    if sub.text is None:
        raise errors.Failure(
            "Claude did not submit a valid plan; nothing was written",
            hint=f"see `vpsagent conversations show {res.conversation_id}`, or continue it with "
                 f"`vpsagent ask --plan {output} --conversation {res.conversation_id} \"...\"`",
            data={"conversation_id": res.conversation_id})
    _write(output, sub.text)
    from vpsagent.plans.changes import load_change_plan

    plan = load_change_plan(output)
    record_plan(ctx, plan, origin="ask")
    return PlanAskResult(res, output, plan.hash, len(plan.steps), sub.attempts, sub.text)


# --------------------------------------------------------------------------- ask --save-test

SAVE_TEST_REQUEST = (
    "the end state the task above reached — e.g. the service is active, the port answers, the version "
    "is the new one. It must pass now, on {servers}; name them in `servers:`. The plan becomes a "
    "regression test run in CI"
)


@dataclass
class SaveTestResult:
    ask: AskResult
    path: str
    name: str
    steps: int
    attempts: int
    text: str = field(repr=False, default="")


def _try_test_plan(session: OpenConversation, text: str, label: str) -> tuple[str | None, Plan | None]:
    """Validate `text` as a test plan and run it once on the conversation's servers:
    (what went wrong, for the model, or None; the plan)."""
    from vpsagent.plans.runner import run_plan
    from vpsagent.plans.schema import validate_text

    plan, problems = validate_text(text, label)
    if problems or plan is None:
        return "the plan is invalid:\n" + "\n".join(str(p) for p in problems), None
    names = [n for n in plan.servers if n in session.servers] or list(session.servers)
    outside = [n for n in plan.servers if n not in session.servers]
    if outside or plan.tags:
        return (f"use `servers:` with servers of this conversation only ({', '.join(session.servers)}), "
                "no tags"), None
    result = run_plan(plan, names, open_host=session.fleet.host, execute=session.fleet.executor("test"))
    failed = [f"{s.server}: step {st.seq} {st.name!r}: {st.status}: {st.message}"
              for s in result.servers for st in s.steps if not st.ok]
    if failed:
        # what the checks saw is server output: redacted before the model or the user sees it
        return session.redactor.redact("the plan was run once and failed:\n" + "\n".join(failed)), None
    return None, plan


def ask_save_test(ctx: Context, request: AskRequest, output: str, *, approve: ApproveFn | None = None,
                  on_event: Callable[[AgentEvent], None] | None = None,
                  client: anthropic.Anthropic | None = None) -> SaveTestResult:
    """`ask --save-test`: the task, then (read-only) a test plan of its end state, validated and
    run once before it is written; one retry when it is invalid or fails."""
    from vpsagent.outcomes import exit_code_for
    from vpsagent.services.ask import open_session, run_turn
    from vpsagent.services.testing import GENERATE_GUIDE, extract_yaml

    _check_writable(output)
    session = open_session(ctx, request, client=client)
    try:
        res = run_turn(session, request.prompt, context=request.context, max_turns=request.max_turns,
                       max_cost=request.max_cost, approve=approve, on_event=on_event)
        if res.denied:
            code = exit_code_for(["denied"])
            raise errors.ApprovalRequired(
                f"the task did not finish ({plural(len(res.denied), 'command')} denied): no test plan was written",
                hint="rerun with the approvals it needs", data={"exit_code": code, "conversation_id": res.conversation_id})
        session.mode = "read_only"  # writing the test changes nothing
        prompt = GENERATE_GUIDE.format(server=", ".join(session.servers),
                                       request=SAVE_TEST_REQUEST.format(servers=", ".join(session.servers)))
        label = Path(output).name
        why: str | None = None
        text = ""
        plan: Plan | None = None
        for attempt in (1, 2):
            if attempt == 2:
                prompt = (f"That test plan cannot be saved: {why}\n\nReply with the corrected complete plan in ONE "
                          "```yaml fenced block.")
            turn = run_turn(session, prompt, max_turns=request.max_turns, max_cost=request.max_cost,
                            on_event=on_event)
            text = extract_yaml(turn.answer)
            why, plan = _try_test_plan(session, text, label)
            if why is None:
                break
    finally:
        session.close()
    if why is not None or plan is None:
        raise errors.Failure(f"the test plan was not saved: {why.splitlines()[0] if why else 'no plan'} "
                             "(after one retry); nothing was written",
                             hint=f"see `vpsagent conversations show {res.conversation_id}`",
                             data={"conversation_id": res.conversation_id, "problems": why, "text": text})
    _write(output, text)
    return SaveTestResult(res, output, plan.name, len(plan.steps), attempt, text)


# --------------------------------------------------------------------------- ask --canary

SUBMIT_CHECKS: JSONObject = {
    "name": "submit_checks",
    "description": (
        "Give verify checks (and undo commands) for the changes you made on the canary; they are applied "
        "unchanged to the other servers. Call it once. The commands themselves cannot be changed."
    ),
    "input_schema": {
        "type": "object",
        "properties": {
            "checks": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "step": {"type": "integer", "description": "The step number in the list you were given."},
                        "verify": {"type": "array", "items": {"type": "object"}, "description": _VERIFY_HELP},
                        "undo": {"type": "string", "description": "A command that reverses the step, if any."},
                    },
                    "required": ["step", "verify"],
                },
            },
        },
        "required": ["checks"],
    },
}

CHECKS_PROMPT = (
    "These commands changed the canary {canary} and succeeded; vpsagent will now apply them, unchanged, to "
    "{rest}:\n{steps}\n\nCall submit_checks with verify checks for each step (what must hold after it on "
    "every server) and an undo command where one exists. Use read-only commands only if you need to look."
)


@dataclass
class CanaryResult:
    ask: AskResult
    exit_code: int
    rest: list[str]
    plan_path: str | None = None
    plan_hash: str | None = None
    steps: int = 0
    applied: ApplyResult | None = None


def _canary_steps(session: OpenConversation, res: AskResult) -> list[JSONObject]:
    """The commands and file writes that changed the canary and succeeded, in order, as plan steps."""
    inputs: dict[str, JSONObject] = {}
    for msg in session.history:
        for b in msg["content"] if msg["role"] == "assistant" else []:
            if b.get("type") == "tool_use" and isinstance(b.get("input"), dict):
                inputs[str(b["id"])] = b["input"]
    steps: list[JSONObject] = []
    why = f"done on the canary in conversation {res.conversation_id}: {res.servers[0]}"
    for call in res.tool_calls:
        if not (call["executed"] and call["exit_code"] == 0 and call["risk"] not in (None, "read-only")):
            continue
        given = inputs.get(str(call["id"]), {})
        if call["tool"] == "run_command":
            steps.append({"command": given.get("command"), "why": why, "expect": "as on the canary"})
        elif call["tool"] == "write_file":
            write = {k: given[k] for k in ("path", "content", "mode") if given.get(k) is not None}
            steps.append({"write": write, "why": why, "expect": "as on the canary"})
    return steps


class _Checks:
    """The submit_checks tool: verify and undo for fixed steps, checked like a plan file."""

    def __init__(self, steps: list[JSONObject], doc: Callable[[list[JSONObject]], str]):
        self.steps, self.doc = steps, doc
        self.text: str | None = None

    def handle(self, data: JSONObject) -> tuple[str, bool]:
        checks = data.get("checks")
        if not isinstance(checks, list):
            return "error: checks must be a list", True
        steps = [dict(s) for s in self.steps]
        for c in checks:
            n = c.get("step") if isinstance(c, dict) else None
            if not isinstance(c, dict) or not isinstance(n, int) or not 1 <= n <= len(steps):
                return f"error: each check needs a step number from 1 to {len(steps)}", True
            steps[n - 1]["verify"] = c.get("verify")
            if isinstance(c.get("undo"), str):
                steps[n - 1]["undo"] = c["undo"]
        text = self.doc(steps)
        _plan, problems = validate_bytes(text.encode("utf-8"), "plan.yaml")
        if problems:
            return "error: " + "\n".join(str(p) for p in problems) + "\n\nFix them and call submit_checks again.", True
        self.text = text
        return "checks accepted; end with a one-line summary", False


def ask_canary(ctx: Context, request: AskRequest, canary: str, *, approve: ApproveFn | None = None,
               approve_plan: ApprovePlanFn | None = None, show_plan: Callable[[PlanReview], None] | None = None,
               on_event: Callable[[AgentEvent], None] | None = None, on_apply: OnApplyEvent | None = None,
               client: anthropic.Anthropic | None = None) -> CanaryResult:
    """Claude works on `canary` only; what changed it and succeeded becomes a plan (with checks the model
    gives), which is shown and applied to the rest of the selection through `apply`: one conversation,
    identical commands everywhere."""
    from vpsagent.agent.tools import ExtraTool
    from vpsagent.db.inventory import load_inventory
    from vpsagent.outcomes import exit_code_for
    from vpsagent.services.apply import ApplyRequest, apply_plan
    from vpsagent.services.ask import open_session, run_turn
    from vpsagent.services.fleet import Selection, select
    from vpsagent.services.plans import record_plan

    names = select(load_inventory(ctx.engine), Selection.of(request.servers, request.tags), how="-s NAME or -t TAG")
    if canary not in names:
        raise errors.UsageError(f"the canary {canary!r} is not among the servers chosen ({', '.join(names)})")
    rest = [n for n in names if n != canary]
    work = AskRequest(**{**request.__dict__, "servers": [canary], "tags": []})
    session = open_session(ctx, work, client=client)
    try:
        res = run_turn(session, request.prompt, context=request.context, max_turns=request.max_turns,
                       max_cost=request.max_cost, approve=approve, on_event=on_event)
        steps = _canary_steps(session, res)
        if res.denied or not steps or not rest:
            code = exit_code_for(["denied"] if res.denied else [])
            return CanaryResult(res, code, rest)

        def document(with_checks: list[JSONObject]) -> str:
            return dump_yaml(plan_document(
                request=request.prompt.strip(), model=session.model, conversation_id=session.conversation_id,
                created=datetime.now(UTC).isoformat(timespec="seconds"), servers=rest, tags=[], steps=with_checks))

        checks = _Checks(steps, document)
        listing = "\n".join(f"{i}. {s.get('command') or 'write_file ' + str(dict(s['write']).get('path'))}"
                            for i, s in enumerate(steps, 1))
        session.mode = "read_only"
        run_turn(session, CHECKS_PROMPT.format(canary=canary, rest=", ".join(rest), steps=listing),
                 max_turns=request.max_turns, max_cost=request.max_cost, on_event=on_event,
                 extra_tools=[ExtraTool(SUBMIT_CHECKS, checks.handle)])
    finally:
        session.close()
    path = ctx.settings.data_dir / "plans" / f"canary-{res.conversation_id}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(checks.text or document(steps), encoding="utf-8")
    from vpsagent.plans.changes import load_change_plan

    plan = load_change_plan(path)
    record_plan(ctx, plan, origin="canary")
    applied = apply_plan(ctx, ApplyRequest(path=str(path), selection=Selection.of(rest), yes=request.mode == "yes",
                                           conversation_id=res.conversation_id),
                         approve=approve_plan, on_event=on_apply, show=show_plan)
    return CanaryResult(res, applied.exit_code, rest, str(path), plan.hash, len(plan.steps), applied)
