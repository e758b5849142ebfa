"""How change plans look: `plan show`, the one approval of `apply`, progress and the summary."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vpsagent.render import Output, table, when
from vpsagent.render.stream import inert

if TYPE_CHECKING:
    from vpsagent.render import LazyConsole
    from vpsagent.services.apply import ApplyEvent, ApplyResult
    from vpsagent.services.plans import Judgement, PlanHistory, PlanReview, PlanRow

_STYLE = {"allow": "green", "ask": "yellow", "deny": "red"}


def review_lines(rev: PlanReview) -> list[tuple[str, str | None]]:
    """The plan as people review it: each step, its class and today's decision per server."""
    p = rev.plan
    lines: list[tuple[str, str | None]] = [
        (f"plan {p.path}  sha256:{p.hash}", "bold"),
        (f"request: {p.request or '-'}", None),
        (f"model: {p.model or '-'} · conversation: {p.conversation_id or '-'} · created: {p.created or '-'}", None),
        (f"servers: {', '.join(rev.servers) or '(none chosen)'}", None),
    ]
    if rev.previous is not None:
        lines.append((f"note: another version of this file was seen {rev.previous.seen_at:%Y-%m-%d %H:%M} "
                      f"(sha256:{rev.previous.hash[:12]}, {rev.previous.origin})", "yellow"))
    for s in p.steps:
        lines.append(("", None))
        where = ", ".join([*s.servers, *(f"tag:{t}" for t in s.tags)]) or "all servers"
        judged = rev.for_step(s.index)
        verdict = f"{judged[0].risk.value}: {_decisions(judged)}" if judged else "runs on no server chosen"
        lines.append((f"{s.index}. $ {s.action}  [{verdict}]", _STYLE.get(_worst(judged), "bold")))
        named = f"name: {s.name} · " if s.name != " ".join(s.action.split())[:60] else ""
        lines.append((f"   {named}servers: {where} · line {s.line}", None))
        if s.write is not None:
            lines += [(f"   | {ln}", "dim") for ln in s.write.content.splitlines()[:40]]
        lines.append((f"   why: {s.why}", None))
        lines.append((f"   expect: {s.expected}", None))
        if s.verify is not None:
            lines.append((f"   verify: {'; '.join(st.name for st in s.verify.steps)}", None))
        if s.undo:
            lines.append((f"   undo: $ {s.undo}", None))
        elif s.write is not None:
            lines.append(("   undo: put back the file as it was (backed up before the write)", None))
        for j in rev.for_step(s.index) + rev.for_step(s.index, undo=True):
            what = "undo " if j.undo else ""
            lines.append((f"   {what}{j.server}: {j.risk.value} → {j.decision.value}: {j.reason}",
                          _STYLE.get(j.decision.value)))
    return lines


def _decisions(judged: list[Judgement]) -> str:
    """`ask` when every server gets the same decision, else `web1 allow, web2 ask`."""
    kinds = {j.decision.value for j in judged}
    if len(kinds) == 1:
        return kinds.pop()
    return ", ".join(f"{j.server} {j.decision.value}" for j in judged)


def _worst(judged: list[Judgement]) -> str:
    kinds = {j.decision.value for j in judged}
    return next((k for k in ("deny", "ask", "allow") if k in kinds), "")


def print_review(console: LazyConsole, rev: PlanReview) -> None:
    for text, style in review_lines(rev):
        console.print(inert(text), markup=False, highlight=False, style=style, soft_wrap=True)


class ApplyProgress:
    """One line per step, check and undo on stderr."""

    def __init__(self, out: Output):
        self.console = out.err

    def __call__(self, ev: ApplyEvent) -> None:
        mark = "✓" if ev.ok else "✗"
        style = "green" if ev.ok else "red"
        if ev.kind == "server":
            self.console.print(f"{ev.server}: {inert(ev.text)}", markup=False, highlight=False, style="bold")
            return
        self.console.print(f"  {mark} [{ev.server}] {inert(ev.text)}", markup=False, highlight=False, style=style,
                           soft_wrap=True)


def apply_summary(console: LazyConsole, res: ApplyResult) -> None:
    if res.refused:
        console.print(f"error: plan sha256:{res.hash[:12]} not applied, nothing was run "
                      f"({len(res.refused)} reason{'s' if len(res.refused) != 1 else ''}):", markup=False, style="red")
        for why in res.refused:
            console.print(f"  {inert(why)}", markup=False, highlight=False, soft_wrap=True)
        return
    if res.dry_run:
        console.print(f"dry run of plan sha256:{res.hash[:12]}: nothing was executed", markup=False)
        print_review(console, res.review)
        return
    rows = []
    for s in res.servers:
        failed = next((st for st in s.steps if st.status == "failed" or st.verify == "failed"), None)
        detail = s.error or (f"step {failed.index}: {failed.message}" if failed else "")
        if s.undone:
            detail += " · undone: " + ", ".join(f"step {u.index} ({u.status})" for u in s.undone)
        rows.append([s.server, s.outcome.value, f"{sum(st.status == 'ok' for st in s.steps)}/{len(s.steps)}",
                     inert(detail)])
    console.print(f"plan sha256:{res.hash[:12]} · application #{res.application_id} · {res.status}", markup=False)
    console.print(table(["SERVER", "OUTCOME", "STEPS", "DETAIL"], rows, flex=("DETAIL",)))


def plans_table(rows: list[PlanRow]) -> object:
    return table(["HASH", "SEEN", "ORIGIN", "STEPS", "APPLIED", "LAST", "PATH"],
                 [[r.hash[:12], when(r.seen_at), r.origin, r.steps, r.applications,
                   r.last_status or "-", r.path] for r in rows], flex=("PATH",))


def history_table(h: PlanHistory) -> object:
    rows = []
    for a in h.applications:
        outcomes = ", ".join(f"{k}={v.get('outcome')}" for k, v in dict(a["results"] or {}).items())
        rows.append([a["id"], when(a["started_at"]), a["user"] or "-", a["status"],
                     a["exit_code"], outcomes or str(a.get("error") or "")])
    return table(["ID", "STARTED", "WHO", "STATUS", "EXIT", "SERVERS"], rows, flex=("SERVERS",))


def history_heading(h: PlanHistory) -> str:
    return f"plan sha256:{h.hash[:12]}" + (f" ({h.path})" if h.path else "")
