"""`vpsagent test`: YAML test plans run step by step over SSH, with CI reports."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import click

from vpsagent.cli._common import App, Limit, RowId, connect_timeout_option, lock_options, pass_app
from vpsagent.wording import plural

if TYPE_CHECKING:
    from vpsagent.plans.schema import PlanInvalid
    from vpsagent.render import LazyConsole

FORMATS = ("text", "json", "junit", "tap")


@click.group()
def test() -> None:
    """YAML test plans: run them on servers, validate them, see past runs.

    \b
    Example:
      vpsagent test validate testplans/*.yaml
      vpsagent test run testplans/web-smoke.yaml -s web1 --report junit:report.xml
      vpsagent test history --plan "web smoke"

    The plan format is documented in docs/testplans.md.
    """


def _expand(paths: tuple[str, ...]) -> list[str]:
    """A directory stands for the *.yaml / *.yml plans in it."""
    out: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            found = sorted(str(x) for x in Path(p).iterdir()
                           if x.suffix in (".yaml", ".yml") and x.is_file())
            if not found:
                # a CI job pointed at the wrong directory must not pass by running nothing
                from vpsagent.errors import UsageError

                raise UsageError(f"no plans (*.yaml, *.yml) in {p}")
            out += found
        else:
            out.append(p)
    return out


def _parse_reports(values: tuple[str, ...]) -> list[tuple[str, str]]:
    from vpsagent.errors import UsageError

    out = []
    for v in values:
        fmt, sep, path = v.partition(":")
        if not sep or fmt not in FORMATS or not path:
            raise UsageError(f"bad --report {v!r}: use FORMAT:FILE with FORMAT one of "
                             f"{', '.join(FORMATS)}, e.g. --report junit:report.xml")
        out.append((fmt, path))
    return out


def _check_writable(paths: list[str]) -> None:
    """Before anything runs: a report that cannot be written is bad input (exit 2, nothing run)."""
    from vpsagent.errors import UsageError

    for path in paths:
        target = Path(path)
        parent = target.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UsageError(f"cannot write {path}: {e.strerror}") from None
        if target.is_dir() or not os.access(parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
            raise UsageError(f"cannot write {path}: not a writable file")


def _write_file(path: str, text: str) -> None:
    """Write next to the target and rename, so CI never reads a half-written report."""
    from vpsagent.errors import UsageError

    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # a report is an ordinary file, not mkstemp's private 0600
        os.replace(tmp, target)
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror}") from None


def _print_problems(app: App, err: PlanInvalid, *, to_stdout: bool) -> None:
    if app.out.json_mode:
        return
    for p in err.problems:
        if to_stdout:
            app.out.line(str(p))
        else:
            app.out.err.print(str(p), markup=False)


@test.command("run")
@click.argument("plans", nargs=-1, required=True)
@click.option("-s", "--server", "servers", multiple=True, metavar="NAME",
              help="Run on this server (repeatable); overrides the plan's servers/tags.")
@click.option("-t", "--tag", "tags", multiple=True, metavar="TAG",
              help="Run on servers with this tag (repeatable); overrides the plan's servers/tags.")
@click.option("--var", "vars_", multiple=True, metavar="NAME=VALUE",
              help="Set a plan variable (repeatable); beats VPSAGENT_VAR_<NAME> and the plan's vars.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
              help="Report format on stdout (or in --output). On a terminal without --format or "
                   "--output, the progress and a summary only. With --json, --format needs --output "
                   "(stdout is the JSON document).")
@click.option("-o", "--output", metavar="FILE", help="Write the report to FILE instead of stdout.")
@click.option("--report", "reports", multiple=True, metavar="FORMAT:FILE",
              help="Also write a report, e.g. junit:report.xml (repeatable).")
@click.option("--forks", type=int, metavar="N", help="Servers at once (default 64, as `vpsagent run`).")
@click.option("--fail-fast/--no-fail-fast", default=None,
              help="Skip a server's remaining steps after its first failure (default: the plan's).")
@click.option("--explain", is_flag=True,
              help="Attach a read-only AI diagnosis to each failed step (needs ANTHROPIC_API_KEY).")
@connect_timeout_option
@lock_options
@pass_app
def test_run(app: App, plans: tuple[str, ...], servers: tuple[str, ...], tags: tuple[str, ...],
             vars_: tuple[str, ...], fmt: str, output: str | None, reports: tuple[str, ...],
             forks: int | None, fail_fast: bool | None, explain: bool, connect_timeout: float | None,
             lock: bool, lock_wait: float | None) -> int:
    """Run test plans on servers; exit 0 when every step passed.

    Steps run in order on each server over one connection; servers run in parallel.
    Progress goes to stderr, the report to stdout (or --output), more reports with --report.
    Exit codes: 0 all passed, 1 a step failed, 2 invalid plan or unknown server,
    5 a server was unreachable, 75 --lock: another run holds a server's lock.
    --explain asks Claude (read-only commands only) why each
    failed step failed and puts the answer in the reports; it never changes the exit code.

    \b
    Example:
      vpsagent test run testplans/web-smoke.yaml -s web1 --var url=https://example.com/ \\
          --report junit:report.xml --report json:report.json
    """
    from vpsagent.errors import UsageError
    from vpsagent.plans import reporters
    from vpsagent.plans.schema import PlanInvalid
    from vpsagent.render.agent import Display
    from vpsagent.render.plans import Progress
    from vpsagent.services import testing

    fmt_given = click.get_current_context().get_parameter_source("fmt") != click.core.ParameterSource.DEFAULT
    if app.out.json_mode and fmt_given and fmt != "json" and not output:
        raise UsageError(f"--json and --format {fmt} both want stdout",
                         hint=f"keep --json and add --output FILE (or --report {fmt}:FILE) for the {fmt} report")
    extra = _parse_reports(reports)
    _check_writable([p for _, p in extra] + ([output] if output else []))
    overrides = testing.parse_vars(vars_)
    paths = _expand(plans)
    try:
        outcome = testing.run_tests(
            app.ctx, paths, servers=servers, tags=tags, overrides=overrides,
            flag_vars=[v.partition("=")[0].strip() for v in vars_], forks=forks, fail_fast=fail_fast,
            on_event=Progress(app.out), explain=explain,
            on_agent_event=Display(app.out, answer_to_stdout=False) if explain else None,
            connect_timeout=connect_timeout, lock=lock, lock_wait=lock_wait,
        )
    except PlanInvalid as e:
        _print_problems(app, e, to_stdout=False)
        n = len(e.problems)
        e.message = f"{n} problem{'s' if n != 1 else ''} in the plan; nothing was run"
        raise
    code = outcome.exit_code
    for rfmt, rpath in extra:
        _write_file(rpath, reporters.render(rfmt, outcome.results, code))
    text = reporters.render(fmt, outcome.results, code)
    if output:
        _write_file(output, text)  # also under --json: the file was asked for
    if app.out.json_mode:
        return app.out.emit(reporters.json_report(outcome.results, code), exit_code=code)
    if output:
        app.out.err.print(f"{reporters.summary_text(outcome.summary)}; report in {output}", markup=False)
    elif app.out.out.is_terminal and not fmt_given:
        # the progress lines already showed every step: a summary, not the report again
        app.out.line(reporters.summary_text(outcome.summary))
    else:
        app.out.data(text)
    return code


@test.command("generate")
@click.argument("request")
@click.option("-s", "--server", required=True, metavar="NAME", help="The server to look at.")
@click.option("-o", "--output", metavar="FILE", help="Write the plan here (default: stdout).")
@click.option("--force", is_flag=True, help="Overwrite --output if it exists.")
@pass_app
def test_generate(app: App, request: str, server: str, output: str | None, force: bool) -> int:
    """Let Claude look at a server (read-only commands) and write a test plan.

    The plan is validated before it is written; when it is invalid, Claude gets the
    problems back once. Review it before you rely on it.

    \b
    Example:
      vpsagent test generate -s web1 "nginx serves example.com and the disk is not full" \\
          -o testplans/web1.yaml
    """
    from vpsagent.errors import UsageError
    from vpsagent.render.agent import Display
    from vpsagent.services import testing

    if output and os.path.exists(output) and not force:
        raise UsageError(f"{output} exists", hint="use --force to overwrite it")
    res = testing.generate_plan(app.ctx, server, request, output=output,
                                on_event=Display(app.out, answer_to_stdout=False))
    if output:
        _write_file(output, res.text)
    data = {"name": res.name, "steps": res.steps, "attempts": res.attempts,
            "conversation_id": res.conversation_id, "path": output, "plan": res.text}

    def text(console: LazyConsole) -> None:
        if output:
            app.out.err.print(f"wrote {output}: {res.name!r}, {plural(res.steps, 'step')} "
                              f"(conversation {res.conversation_id})", markup=False)
        else:
            app.out.data(res.text)

    return app.out.emit(data, text)


@test.command("validate")
@click.argument("plans", nargs=-1, required=True)
@click.option("--var", "vars_", multiple=True, metavar="NAME=VALUE",
              help="Variables the plan expects from the command line.")
@pass_app
def test_validate(app: App, plans: tuple[str, ...], vars_: tuple[str, ...]) -> int:
    """Check plans without running anything: every problem as file:line:col: message.

    Unknown servers and tags are problems when the inventory can be read, warnings where
    there is no database. Exit 0 when all plans are valid, 2 when any problem was found.

    \b
    Example:
      vpsagent test validate testplans/*.yaml
    """
    from vpsagent.errors import ExitCode
    from vpsagent.services import testing

    res = testing.validate(_expand(plans), testing.parse_vars(vars_), testing.inventory_if_any(app.ctx),
                           max_bytes=app.settings.max_file_bytes)
    code = ExitCode.OK if res.ok else ExitCode.USAGE
    data = {"plans": res.plans, "problems": [p.to_dict() for p in res.problems],
            "warnings": [p.to_dict() for p in res.warnings]}

    def text(console: LazyConsole) -> None:
        for warning in res.warnings:
            app.out.warn(str(warning))
        bad = {p.file for p in res.problems}
        for plan in res.plans:
            if plan["path"] in bad:
                continue
            app.out.line(f"ok: {plan['path']} ({plan['name']!r}, {plural(plan['steps'], 'step')})")
        for problem in res.problems:
            app.out.line(str(problem))
        if res.problems:
            n = len(res.problems)
            app.out.err.print(f"error: {n} problem{'s' if n != 1 else ''} found", markup=False)

    errors = [{"code": "invalid_plan", "message": str(p)} for p in res.problems]
    return app.out.emit(data, text, exit_code=code, errors=errors)


@test.command("history")
@click.option("--plan", "plan_name", metavar="NAME", help="Only runs of this plan (its name).")
@click.option("--limit", type=Limit(), default=20, show_default=True, help="How many runs.")
@pass_app
def test_history(app: App, plan_name: str | None, limit: int) -> int:
    """Past test runs, newest first.

    \b
    Example:
      vpsagent test history --plan "web smoke" --limit 5 --json
    """
    from vpsagent.render import table, when
    from vpsagent.services import testing

    runs = testing.history(app.engine, plan=plan_name, limit=limit)

    def text(console: LazyConsole) -> None:
        if not runs:
            console.print(f"no test runs of plan {plan_name!r}" if plan_name else "no test runs yet", markup=False)
            return
        console.print(table(
            ["ID", "PLAN", "STATUS", "SERVERS", "PASSED", "FAILED", "ERRORS", "SKIPPED", "STARTED"],
            [[r["id"], r["plan"], r["status"], ",".join(r["servers"]), r["passed"], r["failed"],
              r["errors"], r["skipped"], when(r["started_at"])] for r in runs], flex=("PLAN", "SERVERS"),
        ))

    return app.out.emit({"runs": runs}, text)


@test.command("show")
@click.argument("run_id", type=RowId("test run", "`vpsagent test history` lists runs"), metavar="ID")
@pass_app
def test_show(app: App, run_id: int) -> int:
    """One past test run with every step's result.

    \b
    Example:
      vpsagent test show 42
    """
    from vpsagent.render import when
    from vpsagent.services import testing

    run = testing.show_run(app.engine, run_id)

    def text(console: LazyConsole) -> None:
        from vpsagent.redact import inert

        app.out.line(inert(f"run {run['id']}: {run['plan']} ({run['path']}) — {run['status']}"))
        app.out.line(f"started {when(run['started_at'])}, {run['duration_ms'] or 0} ms, "
                   f"{run['passed']} passed, {run['failed']} failed, {plural(run['errors'], 'error')}, "
                   f"{run['skipped']} skipped")
        for st in run["steps"]:
            app.out.line(inert(f"  [{st['server']}] {st['seq']:>3}. {st['status']:<7} {st['name']}"))
            if st["status"] in ("failed", "error") and st["message"]:
                app.out.line(f"         {inert(str(st['message']))}")

    return app.out.emit(run, text)
