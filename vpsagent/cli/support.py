"""`vpsagent support`: troubleshooting — evidence first, findings, then plain words."""

from __future__ import annotations

from pathlib import Path

import click

from vpsagent.cli._common import (
    App,
    FiniteFloat,
    Limit,
    QuestionGroup,
    RowId,
    pass_app,
    selection_options,
)


@click.command(name="support")
@click.argument("question", nargs=-1)
@selection_options(all_help="Every server in the inventory.")
@click.option("--since", default="2h", show_default=True, metavar="DURATION", help="The window for logs, OOM kills.")
@click.option("--no-ai", is_flag=True, help="Collectors and findings only, no model (no API key needed).")
@click.option("--set", "settings", multiple=True, metavar="NAME=VALUE",
              help="A threshold, e.g. --set disk_percent=80 (repeatable; see docs/support.md).")
@click.option("--collect-only", is_flag=True, help="Only collect, into a bundle (-o FILE.tar.gz); no AI.")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help="The bundle to write.")
@click.option("-c", "--continue", "continue_", is_flag=True, help="Ask a follow-up in the last support conversation.")
@click.option("--model", metavar="MODEL", help="Claude model (default: VPSAGENT_MODEL or a current Sonnet).")
@click.option("--max-cost", type=FiniteFloat(), metavar="USD",
              help="Stop when the estimated cost passes this (exit 8).")
@pass_app
def support_question(app: App, question: tuple[str, ...], selection: object, since: str, no_ai: bool,
                     settings: tuple[str, ...], collect_only: bool, output: Path | None, continue_: bool,
                     model: str | None, max_cost: float | None) -> int:
    """Troubleshoot servers: collect evidence, find what is wrong, explain it in plain words.

    Read-only collectors run on each server (one command each, in parallel), deterministic
    checks turn their output into findings, and — with ANTHROPIC_API_KEY set and without
    --no-ai — Claude explains them, running more read-only commands if it needs to.

    \b
    Examples:
      vpsagent support -s web1 "why is it slow?"
      vpsagent support -t web --no-ai --set disk_percent=80
      vpsagent support -s web1 --collect-only -o web1-support.tar.gz
      vpsagent support --continue "how do I fix the disk?"
      vpsagent support list; vpsagent support show 3

    Exit codes: 0 done (findings are not failures) · 2 bad input · 5 a server unreachable
    · 6 AI service error.
    """
    from vpsagent.errors import UsageError
    from vpsagent.render.agent import Display
    from vpsagent.render.support import render_follow_up, render_report
    from vpsagent.services import support
    from vpsagent.services.fleet import Selection

    assert isinstance(selection, Selection)
    text = " ".join(question)
    if continue_:
        display = Display(app.out, answer_to_stdout=not app.out.json_mode)
        try:
            result = support.follow_up(app.ctx, text, on_event=display)
        finally:
            display.finish()
        return render_follow_up(app.out, result)
    if selection.empty:
        raise UsageError("choose servers with -s NAME, -t TAG or --all")
    request = support.SupportRequest(selection=selection, question=text, since=since, no_ai=no_ai,
                                     settings=_pairs(settings), collect_only=collect_only, bundle=output,
                                     model=model, max_cost=max_cost)
    display = Display(app.out, answer_to_stdout=False)
    try:
        report = support.support(app.ctx, request, on_event=display, on_progress=app.out.note)
    finally:
        display.finish()
    return render_report(app.out, report)


def _pairs(values: tuple[str, ...]) -> dict[str, str]:
    from vpsagent.errors import UsageError

    out = {}
    for v in values:
        name, sep, value = v.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"bad --set {v!r}: use --set name=value")
        out[name.strip()] = value.strip()
    return out


@click.group(cls=QuestionGroup, question=support_question, invoke_without_command=True)
def support() -> None:
    """Troubleshoot servers (see `vpsagent support --help`)."""


@support.command("list")
@click.option("--limit", type=Limit(), default=20, show_default=True, help="How many reports.")
@pass_app
def support_list(app: App, limit: int) -> int:
    """Past support reports, newest first.

    \b
    Example:
      vpsagent support list --json
    """
    from vpsagent.render.support import render_list
    from vpsagent.services import support as svc

    return render_list(app.out, svc.list_reports(app.ctx, limit=limit))


@support.command("show")
@click.argument("report_id", type=RowId("support report", "`vpsagent support list` shows them"), metavar="ID")
@pass_app
def support_show(app: App, report_id: int) -> int:
    """One support report: findings and what each collector saw.

    \b
    Example:
      vpsagent support show 3 --json
    """
    from vpsagent.render.support import render_stored
    from vpsagent.services import support as svc

    return render_stored(app.out, svc.show_report(app.ctx, report_id))
