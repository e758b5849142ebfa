"""Change plans: review (`plan show`, `plan validate`), storage (`plan list`, `plan history`).

A plan is judged the way `ask` judges a command, with today's policy: every step on every
server it targets gets its class (read-only, change, unknown, destructive) and the
decision (allow, ask, deny). `apply` uses the same judgement, again, at apply time.

Plans are stored by content hash and file: the rows say who wrote, showed or applied which
version, so `apply` can tell a plan edited after it was shown from the one reviewed.
"""

from __future__ import annotations

import getpass
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from vpsagent import errors
from vpsagent.jsondata import JSONObject
from vpsagent.outcomes import Decision, Risk
from vpsagent.plans.changes import (
    ChangePlan,
    ChangeStep,
    content_hash,
    load_change_plan,
    read_plan_bytes,
    validate_bytes,
)
from vpsagent.plans.schema import PlanInvalid, Problem
from vpsagent.services.context import Context
from vpsagent.services.fleet import Selection

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from vpsagent.db.inventory import ServerRecord
    from vpsagent.safety.classify import Classification
    from vpsagent.safety.policy import Mode, Policy

NO_SELECTION = Selection()
NO_SERVER = "the server"  # how verdicts name the server when the plan targets none in the inventory


@dataclass(frozen=True)
class Judgement:
    """One action of a plan on one server, as the gate sees it today."""

    step: int
    server: str
    action: str  # the command, `write_file PATH (N bytes)`, or the undo command
    risk: Risk
    decision: Decision
    reason: str
    rule: str | None = None
    undo: bool = False  # this is the step's undo command

    def as_dict(self) -> JSONObject:
        return {"step": self.step, "server": self.server, "action": self.action, "risk": self.risk.value,
                "decision": self.decision.value, "reason": self.reason, "rule": self.rule, "undo": self.undo}


@dataclass
class PlanReview:
    """`plan show` / `plan validate`: the plan, where it runs, and each action's judgement."""

    plan: ChangePlan
    servers: list[str]
    judgements: list[Judgement] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    previous: PlanRow | None = None  # the last other version of this file vpsagent saw

    @property
    def denied(self) -> list[Judgement]:
        return [j for j in self.judgements if j.decision == Decision.DENY]

    @property
    def asks(self) -> list[Judgement]:
        return [j for j in self.judgements if j.decision == Decision.ASK]

    def for_step(self, step: int, *, undo: bool = False) -> list[Judgement]:
        return [j for j in self.judgements if j.step == step and j.undo == undo]

    def as_dict(self) -> JSONObject:
        return {
            "path": self.plan.path, "hash": self.plan.hash, "request": self.plan.request, "model": self.plan.model,
            "conversation_id": self.plan.conversation_id, "created": self.plan.created, "servers": self.servers,
            "selection": {"servers": self.plan.servers, "tags": self.plan.tags},
            "steps": [_step_dict(s) for s in self.plan.steps],
            "judgements": [j.as_dict() for j in self.judgements],
            "problems": [p.to_dict() for p in self.problems],
        }


def _step_dict(s: ChangeStep) -> JSONObject:
    return {"index": s.index, "name": s.name, "line": s.line, "action": s.action, "command": s.command,
            "write": None if s.write is None else {"path": s.write.path, "bytes": len(s.write.content.encode()),
                                                   "mode": None if s.write.mode is None else f"{s.write.mode:04o}"},
            "servers": s.servers, "tags": s.tags, "why": s.why, "expect": s.expected,
            "verify": [st.name for st in s.verify.steps] if s.verify is not None else [], "undo": s.undo}


# --------------------------------------------------------------------------- judging


def classify_step(step: ChangeStep) -> Classification:
    from vpsagent.safety.classify import classify
    from vpsagent.safety.scripts import classify_write

    if step.write is not None:
        return classify_write(step.write.path, step.write.content.encode(), step.write.mode)
    return classify(step.command or "")


def judge(plan: ChangePlan, servers: Sequence[str], records: Mapping[str, ServerRecord], policy: Policy, *,
          mode: Mode) -> list[Judgement]:
    """Every step (and its undo) on every server it applies to, under `policy` in `mode`."""
    from vpsagent.safety.classify import classify
    from vpsagent.safety.policy import decide

    out: list[Judgement] = []
    targets = list(servers) or [NO_SERVER]
    for step in plan.steps:
        cls = classify_step(step)
        undo_cls = classify(step.undo) if step.undo else None
        for name in targets:
            rec = records.get(name)
            tags = tuple(rec.tags) if rec is not None else ()
            if name != NO_SERVER and not step.applies_to(name, tags):
                continue
            v = decide(policy, cls, server=name, tags=tags, mode=mode)
            out.append(Judgement(step.index, name, step.action, cls.risk, v.decision, v.reason, v.rule))
            if undo_cls is not None and step.undo:
                u = decide(policy, undo_cls, server=name, tags=tags, mode=mode)
                out.append(Judgement(step.index, name, step.undo, undo_cls.risk, u.decision, u.reason, u.rule, True))
    return out


def targets(plan: ChangePlan, inventory: Mapping[str, ServerRecord], selection: Selection) -> Selection:
    """The servers a plan is for: `-s`/`-t` given now, else the plan's own selection."""
    if not selection.empty:
        return selection
    return Selection.of(plan.servers, plan.tags)


def _selection_problems(plan: ChangePlan, inventory: Mapping[str, ServerRecord]) -> list[Problem]:
    """Servers and tags the plan names that the inventory does not have, at their places."""
    problems = []
    line = min((s.line for s in plan.steps), default=1)
    for name in plan.servers:
        if name not in inventory:
            problems.append(Problem(plan.path, _find_line(plan.text, name, line), 1,
                                    f"unknown server {name!r} in selection (`vpsagent servers list` shows them)"))
    for tag in plan.tags:
        if not any(tag in r.tags for r in inventory.values()):
            problems.append(Problem(plan.path, _find_line(plan.text, tag, line), 1, f"no server has tag {tag!r}"))
    for step in plan.steps:
        for name in step.servers:
            if name not in inventory:
                problems.append(Problem(plan.path, _find_line(plan.text, name, step.line), 1,
                                        f"step {step.index}: unknown server {name!r}"))
    return problems


def _find_line(text: str, needle: str, default: int) -> int:
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line and not line.lstrip().startswith("#"):
            return i
    return default


def review(ctx: Context, path: str, *, selection: Selection = NO_SELECTION, mode: str = "default",
           record: str | None = None) -> PlanReview:
    """Load, validate and judge a plan with today's policy; PlanInvalid (exit 2) when it is not a plan.

    With `record`, the plan is stored as seen (`show`, `validate`) under that origin."""
    from vpsagent.db.inventory import load_inventory
    from vpsagent.safety.policy import Mode, load_policy
    from vpsagent.services.fleet import select

    plan = load_change_plan(path)
    inventory = load_inventory(ctx.engine)
    problems = _selection_problems(plan, inventory) if selection.empty else []
    names: list[str] = []
    if not problems:
        sel = targets(plan, inventory, selection)
        names = select(inventory, sel) if not sel.empty else []
    policy = load_policy(ctx.settings.policy_file)
    smode = Mode.YES if mode == "yes" else Mode.DEFAULT
    result = PlanReview(plan, names, judge(plan, names, inventory, policy, mode=smode), problems)
    result.previous = last_other_version(ctx.engine, plan)
    if record is not None and not problems:
        record_plan(ctx, plan, origin=record)
    return result


def validate(ctx: Context, path: str) -> PlanReview:
    """`plan validate`: every problem as file:line:col (PlanInvalid), else the review."""
    raw = read_plan_bytes(path)
    plan, problems = validate_bytes(raw, path)
    if problems or plan is None:
        raise PlanInvalid(problems)
    res = review(ctx, path, record="validate")
    if res.problems:
        raise PlanInvalid(res.problems)
    return res


# --------------------------------------------------------------------------- storage


@dataclass(frozen=True)
class PlanRow:
    id: int
    hash: str
    path: str
    request: str
    origin: str
    steps: int
    servers: list[str]
    created_at: datetime
    seen_at: datetime
    user: str | None
    applications: int = 0
    last_status: str | None = None


def _os_user() -> str | None:
    try:
        return getpass.getuser()[:100]
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return None


def abspath(path: str) -> str:
    return str(Path(path).expanduser().resolve())


def record_plan(ctx: Context, plan: ChangePlan, *, origin: str) -> int:
    """Store (or touch) this version of this plan file; returns its row id."""
    from sqlmodel import select

    from vpsagent.db.engine import session_scope
    from vpsagent.db.models import PlanRecord, utcnow
    from vpsagent.redact import Redactor
    from vpsagent.services.fleet import known_secrets

    who = ctx.identity()
    path = abspath(plan.path)
    conv_id = _existing_conversation(ctx.engine, plan.conversation_id)
    with session_scope(ctx.engine) as s:
        row = s.exec(select(PlanRecord).where(PlanRecord.hash == plan.hash, PlanRecord.path == path)).first()
        if row is None:
            row = PlanRecord(hash=plan.hash, path=path[:2048], request=plan.request[:2000], model=plan.model[:100],
                             conversation_id=conv_id,
                             servers=[*plan.servers, *(f"tag:{t}" for t in plan.tags)],
                             steps=len(plan.steps), origin=origin,
                             content=Redactor(known_secrets(ctx.settings)).redact(plan.text),
                             user_id=who.user_id, user_email=who.email, os_user=_os_user())
        row.seen_at = utcnow()
        s.add(row)
        s.flush()
        assert row.id is not None
        return row.id


def _existing_conversation(engine: Engine, conv_id: int | None) -> int | None:
    """The plan's conversation id when this database has it (a plan may come from elsewhere)."""
    if conv_id is None:
        return None
    from vpsagent.db.engine import session_scope
    from vpsagent.db.models import Conversation

    with session_scope(engine) as s:
        return conv_id if s.get(Conversation, conv_id) is not None else None


def last_other_version(engine: Engine, plan: ChangePlan) -> PlanRow | None:
    """The newest version of this file vpsagent saw, when it is not this one."""
    from sqlmodel import col, select

    from vpsagent.db.engine import session_scope
    from vpsagent.db.models import PlanRecord

    with session_scope(engine) as s:
        row = s.exec(select(PlanRecord).where(PlanRecord.path == abspath(plan.path))
                     .order_by(col(PlanRecord.seen_at).desc(), col(PlanRecord.id).desc())).first()
        if row is None or row.hash == plan.hash:
            return None
        return _row(row)


def _row(r: object, applications: int = 0, last_status: str | None = None) -> PlanRow:
    from vpsagent.db.models import PlanRecord

    assert isinstance(r, PlanRecord) and r.id is not None
    return PlanRow(r.id, r.hash, r.path, r.request, r.origin, r.steps, list(r.servers), r.created_at, r.seen_at,
                   r.user_email or r.os_user, applications, last_status)


def list_plans(engine: Engine, *, limit: int = 50) -> list[PlanRow]:
    """`plan list`: plans vpsagent wrote, showed or applied, newest first, with their applications."""
    from sqlmodel import col, select

    from vpsagent.db.engine import session_scope
    from vpsagent.db.models import PlanApplication, PlanRecord

    with session_scope(engine) as s:
        rows = s.exec(select(PlanRecord).order_by(col(PlanRecord.seen_at).desc(), col(PlanRecord.id).desc())
                      .limit(limit)).all()
        out = []
        for r in rows:
            apps = s.exec(select(PlanApplication).where(PlanApplication.plan_hash == r.hash)
                          .order_by(col(PlanApplication.id).desc())).all()
            out.append(_row(r, len(apps), apps[0].status if apps else None))
        return out


@dataclass
class PlanHistory:
    hash: str
    path: str | None
    applications: list[JSONObject]


def plan_history(engine: Engine, ref: str) -> PlanHistory:
    """`plan history FILE|HASH`: every application of that plan, newest first."""
    from sqlmodel import col, select

    from vpsagent.db.engine import session_scope
    from vpsagent.db.models import PlanApplication, PlanRecord

    path: str | None = None
    if Path(ref).expanduser().is_file():
        # the file as it is now, valid or not: its history is that of these exact bytes
        digest, path = content_hash(read_plan_bytes(ref)), ref
    else:
        if len(ref) < 6 or any(c not in "0123456789abcdef" for c in ref.lower()):
            raise errors.NotFound(f"{ref!r} is neither a plan file nor a plan hash (6+ hex digits)")
        with session_scope(engine) as s:
            found = {r.hash for r in s.exec(select(PlanRecord).where(col(PlanRecord.hash).startswith(ref.lower())))}
            found |= {a.plan_hash for a in s.exec(select(PlanApplication)
                                                  .where(col(PlanApplication.plan_hash).startswith(ref.lower())))}
        if not found:
            raise errors.NotFound(f"no plan with hash {ref}", hint="`vpsagent plan list` shows them")
        if len(found) > 1:
            raise errors.InvalidInput(f"hash {ref} is ambiguous ({len(found)} plans): give more digits")
        digest = found.pop()
    with session_scope(engine) as s:
        apps = s.exec(select(PlanApplication).where(PlanApplication.plan_hash == digest)
                      .order_by(col(PlanApplication.id).desc())).all()
        return PlanHistory(digest, path, [application_dict(a) for a in apps])


def application_dict(a: object) -> JSONObject:
    from vpsagent.db.models import PlanApplication

    assert isinstance(a, PlanApplication)
    return {"id": a.id, "hash": a.plan_hash, "path": a.path, "status": a.status, "exit_code": a.exit_code,
            "dry_run": a.dry_run, "servers": list(a.servers), "results": dict(a.results), "options": dict(a.options),
            "error": a.error, "user": a.user_email or a.os_user, "started_at": a.started_at.isoformat(),
            "finished_at": a.finished_at.isoformat() if a.finished_at else None}
