"""`vpsagent plan show/validate/list/history` and `vpsagent apply`: review a change plan, run it."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from vpsagent.cli._common import App, lock_options, pass_app, selection_options
from vpsagent.wording import plural

if TYPE_CHECKING:
    from vpsagent.render import LazyConsole
    from vpsagent.services.apply import ApproveFn
    from vpsagent.services.fleet import Selection
    from vpsagent.services.plans import PlanReview


@click.group()
def plan() -> None:
    """Change plans written by `ask --plan`: review them before `vpsagent apply`.

    \b
    Example:
      vpsagent ask --plan upgrade.yaml -t web "upgrade nginx and reload it"
      vpsagent plan show upgrade.yaml
      vpsagent apply upgrade.yaml --canary 1

    The format is documented in docs/plans.md.
    """


def _invalid(app: App, exc: Exception) -> int:
    """Every problem as file:line:col: message (stdout), exit 2."""
    from vpsagent.errors import ExitCode
    from vpsagent.plans.schema import PlanInvalid

    assert isinstance(exc, PlanInvalid)
    data = {"problems": [p.to_dict() for p in exc.problems]}

    def text(console: LazyConsole) -> None:
        for p in exc.problems:
            app.out.line(str(p))
        n = len(exc.problems)
        app.out.err.print(f"error: {n} problem{'s' if n != 1 else ''} found", markup=False)

    return app.out.emit(data, text=text, exit_code=ExitCode.USAGE,
                        errors=[{"code": "invalid_plan", "message": str(p)} for p in exc.problems])


@plan.command("show")
@click.argument("path", metavar="FILE")
@selection_options(all_=False)
@pass_app
def plan_show(app: App, path: str, selection: Selection) -> int:
    """Show a plan: each step, why, what to expect, its checks and undo, and for each server
    the step's class and the decision today's policy would give. Records the version shown:
    `apply` refuses a plan edited after it was shown.

    \b
    Example:
      vpsagent plan show upgrade.yaml
      vpsagent plan show upgrade.yaml -t web --json
    """
    from vpsagent.plans.schema import PlanInvalid
    from vpsagent.render.apply import print_review
    from vpsagent.services.plans import review

    try:
        rev = review(app.ctx, path, selection=selection, record="show")
    except PlanInvalid as exc:
        return _invalid(app, exc)
    if rev.problems:
        return _invalid(app, PlanInvalid(rev.problems))
    return app.out.emit(rev.as_dict(), text=lambda c: print_review(c, rev))


@plan.command("validate")
@click.argument("path", metavar="FILE")
@pass_app
def plan_validate(app: App, path: str) -> int:
    """Check a plan without running anything: problems as file:line:col: message; for each
    step its class and today's policy decision.

    Exit 0 valid, 2 problems found, 4 valid but a step would be denied by today's policy.

    \b
    Example:
      vpsagent plan validate upgrade.yaml
    """
    from vpsagent.errors import ExitCode
    from vpsagent.plans.schema import PlanInvalid
    from vpsagent.services.plans import validate

    try:
        rev = validate(app.ctx, path)
    except PlanInvalid as exc:
        return _invalid(app, exc)
    code = ExitCode.NEEDS_APPROVAL if rev.denied else ExitCode.OK

    def text(console: LazyConsole) -> None:
        # "valid" is not "ok" when today's policy would refuse a step (exit 4)
        verdict = f"valid, but {plural(len(rev.denied), 'step')} denied by today's policy" if rev.denied else "ok"
        app.out.line(f"{verdict}: {rev.plan.path} (sha256:{rev.plan.hash[:12]}, {plural(len(rev.plan.steps), 'step')})")
        for j in rev.judgements:
            what = f"step {j.step}{' undo' if j.undo else ''} on {j.server}"
            app.out.line(f"  {what}: {j.risk.value} → {j.decision.value}: {j.reason}")

    return app.out.emit(rev.as_dict(), text=text, exit_code=code)


@plan.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Show at most this many.")
@pass_app
def plan_list(app: App, limit: int) -> int:
    """Plans vpsagent wrote, showed or applied, newest first, with how often they were applied.

    \b
    Example:
      vpsagent plan list
    """
    from vpsagent.render.apply import plans_table
    from vpsagent.services.plans import list_plans

    rows = list_plans(app.engine, limit=limit)

    def text(console: LazyConsole) -> None:
        if not rows:
            app.out.note("no plans yet: write one with `vpsagent ask --plan FILE -s SERVER \"...\"`")
            return
        console.print(plans_table(rows))

    return app.out.emit({"plans": rows}, text=text)


@plan.command("history")
@click.argument("ref", metavar="FILE|HASH")
@pass_app
def plan_history(app: App, ref: str) -> int:
    """Every application of a plan: who, when, and how each server went.

    \b
    Example:
      vpsagent plan history upgrade.yaml
      vpsagent plan history 3f2a9c1b7d20
    """
    from vpsagent.render.apply import history_heading, history_table
    from vpsagent.services.plans import plan_history as history

    h = history(app.engine, ref)

    def text(console: LazyConsole) -> None:
        if not h.applications:
            app.out.note(f"plan sha256:{h.hash[:12]} was never applied")
            return
        console.print(history_heading(h), markup=False)
        console.print(history_table(h))

    return app.out.emit(h, text=text)


# --------------------------------------------------------------------------- apply


def plan_approver(app: App) -> ApproveFn | None:
    """approve(review) -> bool on a terminal: the whole plan shown, one question; None without one."""
    from vpsagent.cli.ask import _tty_in

    if app.out.json_mode or _tty_in() is None:
        return None

    def approve(rev: PlanReview) -> bool:
        from vpsagent.render.apply import print_review

        print_review(app.out.err, rev)
        stream = _tty_in()
        if stream is None:
            return False
        try:
            sys.stderr.write(f"\nApply this plan to {len(rev.servers)} server(s)? [y/N] ")
            sys.stderr.flush()
            answer = stream.readline()
        finally:
            if stream is not sys.stdin:
                stream.close()
        if not answer:
            raise KeyboardInterrupt
        return answer.strip().lower() in ("y", "yes")

    return approve


@click.command()
@click.argument("path", metavar="FILE")
@selection_options(all_=False)
@click.option("--canary", type=click.IntRange(min=0), default=0, show_default=True, metavar="N",
              help="Apply to the first N servers and check them before any other.")
@click.option("--serial", type=click.IntRange(min=1), default=1, show_default=True, metavar="N",
              help="Then N servers at a time.")
@click.option("--max-fail", default="0", show_default=True, metavar="N|P%",
              help="Go on after this many failed servers (each is undone); a failed canary always stops.")
@click.option("-y", "--yes", is_flag=True, help="Approve `change` steps (never unknown or destructive ones).")
@click.option("--dry-run", is_flag=True, help="Execute nothing: show each step, its class and the policy's decision.")
@click.option("--hash", "expect_hash", metavar="SHA256", help="Apply only if the file has this hash (a prefix will do).")
@lock_options
@pass_app
def apply(app: App, path: str, selection: Selection, canary: int, serial: int, max_fail: str, yes: bool,
          dry_run: bool, expect_hash: str | None, lock: bool, lock_wait: float | None) -> int:
    """Apply a change plan with no AI: canary first, verify each step, undo on failure.

    The plan's SHA-256 is recorded with every command in the audit log. Each step is checked
    against today's policy; a denied step stops the plan before anything runs. On a terminal
    you approve the whole plan once; `--yes` covers `change` steps only. When a step or its
    checks fail on a server, that server's completed steps are undone in reverse order and
    the remaining servers are left untouched.

    \b
    Examples:
      vpsagent apply upgrade.yaml --dry-run
      vpsagent apply upgrade.yaml -t web --canary 1 --serial 2
      vpsagent apply upgrade.yaml --yes --json

    Exit codes: 0 applied everywhere · 1 a step or check failed (what was undone is shown) ·
    2 invalid plan · 4 approval missing, a step denied, or the plan changed since it was
    shown · 5 a server unreachable · 75 --lock: another run holds a server's lock.
    """
    from vpsagent.plans.schema import PlanInvalid
    from vpsagent.render.apply import ApplyProgress, apply_summary
    from vpsagent.services.apply import ApplyRequest, apply_plan

    req = ApplyRequest(path=path, selection=selection, canary=canary, serial=serial, max_fail=max_fail, yes=yes,
                       dry_run=dry_run, expect_hash=expect_hash, lock=lock, lock_wait=lock_wait)
    try:
        res = apply_plan(app.ctx, req, approve=plan_approver(app), on_event=ApplyProgress(app.out))
    except PlanInvalid as exc:
        return _invalid(app, exc)
    errs = [{"code": "refused", "message": r} for r in res.refused]
    return app.out.emit(res.as_dict(), text=lambda c: apply_summary(app.out.err if res.refused else c, res),
                        exit_code=res.exit_code, errors=errs)
