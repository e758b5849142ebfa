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

if TYPE_CHECKING:
    import anthropic

    from vpsagent.agent.loop import AgentEvent
    from vpsagent.agent.tools import ApproveFn, ExtraTool

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
        return (f"plan accepted: {len(plan.steps)} step(s). It is written to {self.output} for review and will be "
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
    Path(output).write_text(sub.text, encoding="utf-8")
    from vpsagent.plans.changes import load_change_plan

    plan = load_change_plan(output)
    record_plan(ctx, plan, origin="ask")
    return PlanAskResult(res, output, plan.hash, len(plan.steps), sub.attempts, sub.text)
