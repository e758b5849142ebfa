"""How deploys look: a line per server and stage as they finish (stderr), then the outcome
per server — and for a failure, why, the end of the failing command's output, what the
support checks found and the model's note. `--json`: the envelope with every stage."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from vpsagent.errors import ExitCode
from vpsagent.jsondata import JSONObject
from vpsagent.outcomes import DeployOutcome
from vpsagent.render import LazyConsole, Output, table, when
from vpsagent.render.plans import MARKS
from vpsagent.render.stream import inert
from vpsagent.services.deploy import DeployResult, ServerReleases, Unlocked, Validated
from vpsagent.services.deploy_flow import Stage
from vpsagent.services.github import Integration
from vpsagent.wording import plural

OUTCOME_STYLE = {DeployOutcome.DEPLOYED: "green", DeployOutcome.PLANNED: "cyan", DeployOutcome.SKIPPED: "yellow"}


class StageProgress:
    """One line per server and stage as each finishes, on stderr (worker threads call it)."""

    def __init__(self, out: Output) -> None:
        self.console = out.err
        self._lock = threading.Lock()

    def __call__(self, server: str, stage: Stage) -> None:
        mark, style = MARKS.get(stage.outcome, ("?", ""))
        text = f"  {mark} [{server}] {stage.name}"
        if stage.outcome in ("failed", "error"):
            text += f" — {inert(stage.detail)}"
        elif stage.outcome == "skipped":
            text += f" ({inert(stage.detail)})"
        else:
            text += f" ({stage.duration_s:.2f}s)"
        with self._lock:
            self.console.print(text, markup=False, highlight=False, style=style, soft_wrap=True)


def _errors(res: DeployResult) -> list[dict[str, str]]:
    return [{"code": str(x.outcome), "message": x.error or str(x.outcome)} for x in res.servers
            if x.outcome not in (DeployOutcome.DEPLOYED, DeployOutcome.PLANNED)]


def render_deploy(out: Output, res: DeployResult) -> int:
    verb = "rolled back" if res.kind == "rollback" else "deployed"

    def text(c: LazyConsole) -> None:
        if res.status == "planned":
            _plan(c, res)
            return
        for x in res.servers:
            style = OUTCOME_STYLE.get(x.outcome, "red")
            took = sum(s.duration_s for s in x.stages)
            line = f"{x.server}: {str(x.outcome).replace('_', ' ')} {x.release or ''} ({took:.1f}s)"
            c.print(line, markup=False, style=style, highlight=False)
            if x.error:
                out.err.print(f"  {inert(x.error)}", markup=False, highlight=False, soft_wrap=True)
            if x.output and x.outcome != DeployOutcome.DEPLOYED:
                out.err.print("  output (end):\n" + "\n".join("    " + inert(ln) for ln in x.output.splitlines()[-15:]),
                              markup=False, highlight=False, soft_wrap=True)
            for f in x.findings:
                out.err.print(f"  support: {inert(f)}", markup=False, highlight=False, soft_wrap=True)
            if x.diagnosis:
                out.err.print(f"  diagnosis: {inert(x.diagnosis)}", markup=False, highlight=False, soft_wrap=True)
        ok = res.status == "deployed"
        summary = (f"{verb} {res.app} {res.sha[:7]} to {plural(len(res.servers), 'server')}" if ok
                   else f"{res.app} {res.sha[:7]}: {res.status}")
        out.note(summary + (f" — deploy #{res.id}: `vpsagent deploy show {res.id}`" if res.id else ""))

    return out.emit(res, text, exit_code=res.exit_code, errors=_errors(res))


def _plan(c: LazyConsole, res: DeployResult) -> None:
    c.print(f"dry run: {res.app} {res.sha[:7]} ({res.ref}) -> {res.path}/releases/{res.release}; nothing runs",
            markup=False)
    for x in res.servers:
        c.print(f"{x.server}:", markup=False, style="bold")
        for s in x.stages:
            c.print(f"  {s.name:<8} {inert(s.detail)}", markup=False, highlight=False, soft_wrap=True)


def render_list(out: Output, rows: Sequence[JSONObject]) -> int:
    def text(c: LazyConsole) -> None:
        if not rows:
            out.note("no deploys yet: `vpsagent deploy OWNER/REPO`")
            return
        c.print(table(["ID", "WHEN", "APP", "SHA", "REF", "SERVERS", "STATUS", "BY"],
                      [[r["id"], when(str(r["created_at"])), r["app"],
                        str(r["sha"] or "")[:7], inert(str(r["ref"] or "")),
                        ",".join(str(s) for s in r["servers"]) if isinstance(r["servers"], list) else "",
                        ("rollback " if r["kind"] == "rollback" else "") + str(r["status"]), r["by"]]
                       for r in rows], flex=("SERVERS", "REF", "BY")))

    return out.emit({"deploys": list(rows)}, text)


def render_show(out: Output, data: JSONObject) -> int:
    def text(c: LazyConsole) -> None:
        c.print(f"deploy #{data['id']}: {data['app']} {str(data['sha'] or '')[:7]} ({data['ref']}) "
                f"{data['status']}, by {data['by']} at {when(str(data['created_at']))}", markup=False)
        if data.get("error"):
            c.print(f"  {inert(str(data['error']))}", markup=False)
        servers = data.get("servers")
        for x in servers if isinstance(servers, list) else []:
            if not isinstance(x, dict):
                continue
            c.print(f"{x.get('server')}: {x.get('outcome')} {x.get('release') or ''}", markup=False, style="bold")
            stages = x.get("stages")
            for s in stages if isinstance(stages, list) else []:
                if isinstance(s, dict):
                    c.print(f"  {s.get('name')!s:<8} {s.get('outcome')!s:<7} {s.get('duration_s')}s "
                            f"{inert(str(s.get('detail') or ''))}", markup=False, highlight=False, soft_wrap=True)

    return out.emit(data, text)


def render_releases(out: Output, entries: Sequence[ServerReleases]) -> int:
    def text(c: LazyConsole) -> None:
        for e in entries:
            if e.error:
                out.err.print(f"error: {e.server}: {e.error}", markup=False)
                continue
            c.print(f"{e.server} ({e.path}):", markup=False, style="bold")
            if not e.releases:
                c.print("  no releases", markup=False)
            for r in e.releases:
                flags = " (current)" if r["current"] else " (failed)" if r["failed"] else ""
                c.print(f"  {r['name']}{flags}", markup=False)

    code = ExitCode.UNREACHABLE if any(e.error for e in entries) else ExitCode.OK
    return out.emit({"servers": list(entries)}, text, exit_code=code,
                    errors=[{"code": "unreachable", "message": f"{e.server}: {e.error}"} for e in entries if e.error])


def render_unlocked(out: Output, app: str, done: Sequence[Unlocked]) -> int:
    def text(c: LazyConsole) -> None:
        for u in done:
            where = {True: "removed on the server", False: "none on the server", None: "server not reachable"}
            c.print(f"{app} on {u.server}: {'lock removed' if u.database else 'no lock'} in the database, "
                    f"{where[u.on_server]}", markup=False)

    code = ExitCode.UNREACHABLE if any(u.on_server is None for u in done) else ExitCode.OK
    return out.emit({"app": app, "servers": list(done)}, text, exit_code=code)


def render_validated(out: Output, v: Validated) -> int:
    """Like `test validate`: `ok: ...`, or every problem as FILE:LINE:COL: message (exit 2)."""
    cfg = v.config

    def text(c: LazyConsole) -> None:
        if cfg is not None:
            where = ", ".join(cfg.servers + [f"tag {t}" for t in cfg.tags]) or "(servers from -s/-t)"
            health = plural(len(cfg.health.steps), "health step") if cfg.health else "no health check"
            out.line(f"ok: {v.file} ({cfg.app} to {where}, {len(cfg.build)} build command(s), {health})")
        for p in v.problems:
            out.line(str(p))
        if v.problems:
            n = len(v.problems)
            out.err.print(f"error: {n} problem{'s' if n != 1 else ''} found", markup=False)

    data = {"file": v.file, "ok": cfg is not None, "app": cfg.app if cfg else None,
            "problems": [p.to_dict() for p in v.problems]}
    return out.emit(data, text, exit_code=ExitCode.USAGE if v.problems else ExitCode.OK,
                    errors=[{"code": "invalid_config", "message": str(p)} for p in v.problems])


def render_integrations(out: Output, rows: Sequence[Integration]) -> int:
    def text(c: LazyConsole) -> None:
        if not rows:
            out.note("no GitHub connections: `vpsagent github connect OWNER/REPO --token-stdin`")
            return
        c.print(table(["NAME", "REPOSITORY", "API", "TOKEN"],
                      [[r.name, r.repo, r.api_url, "stored" if r.has_token else "-"] for r in rows]))

    return out.emit({"integrations": list(rows)}, text)


def render_secrets(out: Output, rows: Sequence[JSONObject]) -> int:
    def text(c: LazyConsole) -> None:
        if not rows:
            out.note("no secrets stored")
            return
        c.print(table(["APP", "NAME", "SET AT"], [[r["app"], r["name"], when(str(r["set_at"]))] for r in rows]))

    return out.emit({"secrets": list(rows)}, text)
