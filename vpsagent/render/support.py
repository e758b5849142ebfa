"""How `vpsagent support` looks: a short findings table (colours on a terminal), then the
plain-words answer; `--json`: collectors, findings and the answer with usage and cost."""

from __future__ import annotations

from collections.abc import Sequence

from vpsagent.errors import ExitCode
from vpsagent.jsondata import JSONObject
from vpsagent.outcomes import CommandStatus
from vpsagent.render import LazyConsole, Output, table, when
from vpsagent.render.stream import inert
from vpsagent.services.ask import AskResult
from vpsagent.services.support import ReportSummary, SupportReport

STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


def _data(report: SupportReport) -> JSONObject:
    return {"id": report.id, "question": report.question, "since_s": report.since_s,
            "servers": report.servers, "findings": report.findings, "answer": report.answer,
            "ai": report.ai_note, "bundle": report.bundle}


def render_report(out: Output, report: SupportReport) -> int:
    errs = [{"code": "unreachable" if s.status == CommandStatus.UNREACHABLE else "error",
             "message": f"{s.name}: {s.error}"} for s in report.servers if s.status != CommandStatus.OK]

    def text(c: LazyConsole) -> None:
        for s in report.servers:
            if s.status != CommandStatus.OK:
                out.err.print(f"error: {s.name}: {s.error}", markup=False)
        _findings(c, report)
        if report.bundle:
            out.note(f"wrote {report.bundle}")
        if report.answer is not None:
            c.print("")
            c.print(inert(report.answer.answer.strip()), markup=False)
        elif report.ai_note and not report.bundle:
            out.note(report.ai_note)
        out.note(f"support report #{report.id}: `vpsagent support show {report.id}`")

    return out.emit(_data(report), text, exit_code=report.exit_code, errors=errs)


def _findings(c: LazyConsole, report: SupportReport) -> None:
    ok = [s.name for s in report.servers if s.status == CommandStatus.OK]
    if not report.findings:
        c.print(f"no problems found on {', '.join(ok) or 'any server'}", markup=False)
        return
    if c.plain:
        for f in report.findings:
            peers = f" ({f.peers})" if f.peers else ""
            c.print(f"{f.severity:<8} {f.server}{peers}: {inert(f.title)}  [{f.collector}]", markup=False)
        return
    c.print(table(["SEVERITY", "SERVER", "FINDING", "EVIDENCE FROM"],
                  [[f.severity, f"{f.server}" + (f" ({f.peers})" if f.peers else ""), inert(f.title), f.collector]
                   for f in report.findings], flex=("FINDING",),
                  style=lambda column, value: STYLE.get(value) if column == "SEVERITY" else None))


def render_follow_up(out: Output, result: AskResult) -> int:
    code = ExitCode.NEEDS_APPROVAL if result.denied else ExitCode.OK
    return out.emit(result, text=None, exit_code=code)


def render_list(out: Output, reports: Sequence[ReportSummary]) -> int:
    def text(c: LazyConsole) -> None:
        if not reports:
            out.note("no support reports yet: `vpsagent support -s SERVER`")
            return
        c.print(table(["ID", "WHEN", "SERVERS", "FINDINGS", "CRITICAL", "QUESTION"],
                      [[r.id, when(r.created_at), ",".join(r.servers), r.findings, r.critical,
                        inert(r.question)] for r in reports], flex=("QUESTION", "SERVERS")))

    return out.emit({"reports": list(reports)}, text)


def render_stored(out: Output, report: JSONObject) -> int:
    def text(c: LazyConsole) -> None:
        c.print(f"support report #{report['id']} on {', '.join(report['servers'])} — {report['question'] or '-'}",
                markup=False)
        for f in report["findings"]:
            c.print(f"  {f['severity']:<8} {f['server']}: {inert(f['title'])}", markup=False)
            for e in f.get("evidence", [])[:5]:
                c.print(f"           {inert(e)}", markup=False)
        if report.get("answer"):
            c.print("")
            c.print(inert(str(report["answer"]).strip()), markup=False)
        if report.get("conversation_id"):
            out.note(f"the whole conversation: `vpsagent conversations show {report['conversation_id']}`")

    return out.emit(report, text)
