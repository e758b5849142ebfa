"""`vpsagent ask`, `vpsagent chat`, `vpsagent conversations`: Claude working on your servers."""

from __future__ import annotations

import functools
import io
import os
import stat
import sys
from collections.abc import Callable
from typing import IO, TYPE_CHECKING

import click

from vpsagent.cli._common import (
    App,
    FiniteFloat,
    Limit,
    P,
    R,
    RowId,
    connect_timeout_option,
    pass_app,
)
from vpsagent.wording import plural

if TYPE_CHECKING:
    from vpsagent.agent.tools import ApproveFn, ToolCall
    from vpsagent.render import LazyConsole
    from vpsagent.services.ask import AskRequest, AskResult, OpenConversation

CONVERSATION = RowId("conversation", "`vpsagent conversations list` shows them")


def _agent_options(f: Callable[P, R]) -> Callable[P, R]:
    opts = [
        click.option("-s", "--server", "servers", multiple=True, metavar="NAME", help="Server the agent may use (repeatable)."),
        click.option("-t", "--tag", "tags", multiple=True, metavar="TAG", help="Every server with this tag (repeatable)."),
        click.option("--model", metavar="MODEL", help="Claude model (default: VPSAGENT_MODEL or a current Sonnet)."),
        click.option("--max-turns", type=click.IntRange(min=1), default=20, show_default=True, help="Stop after this many model turns (exit 8)."),
        click.option("--max-cost", type=FiniteFloat(), metavar="USD", help="Stop when the estimated cost passes this (exit 8)."),
        click.option("--read-only", is_flag=True, help="Deny every command that is not read-only."),
        click.option("-y", "--yes", is_flag=True, help="Approve commands that change servers (never destructive ones)."),
        click.option("--dry-run", is_flag=True, help="Execute nothing; show what the agent would run and what the policy says."),
        click.option("-v", "--verbose", is_flag=True, help="Show token usage and cost on stderr."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _mode(read_only: bool, yes: bool) -> str:
    if read_only and yes:
        raise click.UsageError("--read-only and --yes contradict each other")
    return "read_only" if read_only else "yes" if yes else "default"


def _stdin_is_data() -> bool:
    """True when stdin is piped data (a pipe or a file), not a terminal or nothing."""
    if sys.stdin is None or sys.stdin.isatty():
        return False
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return True  # an in-memory stream (tests, embedding): read it
    return stat.S_ISFIFO(mode) or stat.S_ISREG(mode)


# --------------------------------------------------------------------------- approval


def _tty_in() -> IO[str] | None:
    """Where an approval can be read from: stdin when it is a terminal, else /dev/tty
    when stderr is one (`journalctl | vpsagent ask ...` on a terminal). None: nobody to ask."""
    if sys.stdin is not None and sys.stdin.isatty() and sys.stderr.isatty():
        return sys.stdin
    if sys.stderr is not None and sys.stderr.isatty():
        try:
            return open("/dev/tty")  # noqa: SIM115 - closed by the caller
        except OSError:
            return None
    return None


def make_approver(app: App) -> ApproveFn | None:
    """The approve(call) callback for a terminal, or None when there is no terminal or --json."""
    if app.out.json_mode or _tty_in() is None:
        return None

    def approve(call: ToolCall) -> str:
        # escape sequences from the model could redraw the prompt to show another command
        from vpsagent.outcomes import Decision
        from vpsagent.render.stream import inert as _safe

        err = app.out.err
        err.print(f"\n{_safe(call.server)}: {_safe(call.command)}", markup=False, style="bold")
        what = f"{call.risk or 'unknown'}" + (f": {'; '.join(call.reasons)}" if call.reasons else "")
        err.print(f"  {_safe(what)} — policy: {_safe(call.policy_reason)}", markup=False)
        if call.diff:
            err.print(_safe(call.diff), markup=False)
        stream = _tty_in()
        if stream is None:
            return Decision.DENY
        try:
            sys.stderr.write("Allow this? [y/N] ")
            sys.stderr.flush()
            answer = stream.readline()
        finally:
            if stream is not sys.stdin:
                stream.close()
        if not answer:  # EOF on the terminal
            raise KeyboardInterrupt
        return Decision.ALLOW if answer.strip().lower() in ("y", "yes") else Decision.DENY

    return approve


def _warn_deprecated(app: App, model: str | None) -> None:
    from vpsagent.services.ask import deprecation

    note = deprecation(app.ctx, model)
    if note:
        app.out.warn(note)


# --------------------------------------------------------------------------- ask


@click.command()
@_agent_options
@click.option("-c", "--continue", "continue_", is_flag=True, help="Continue the last conversation.")
@click.option("--conversation", "conversation_id", type=CONVERSATION, metavar="ID", help="Continue conversation ID.")
@click.option("--plan", "plan_file", metavar="FILE", type=click.Path(dir_okay=False),
              help="Investigate read-only and write a change plan to FILE instead of acting (see `vpsagent apply`).")
@click.option("--save-test", "test_file", metavar="FILE", type=click.Path(dir_okay=False),
              help="After the task, have Claude write a test plan of the end state to FILE (run once first).")
@click.option("--canary", metavar="NAME",
              help="Work on NAME only, then apply the changes that succeeded there to the other servers chosen.")
@click.argument("prompt", nargs=-1)
@connect_timeout_option
@pass_app
def ask(app: App, servers: tuple[str, ...], tags: tuple[str, ...], model: str | None, max_turns: int,
        max_cost: float | None, read_only: bool, yes: bool, dry_run: bool, verbose: bool, continue_: bool,
        conversation_id: int | None, plan_file: str | None, test_file: str | None, canary: str | None,
        prompt: tuple[str, ...], connect_timeout: float | None) -> int:
    """Ask Claude to investigate or act on servers; it runs commands through tools.

    The answer streams to stdout; commands, decisions and their output go to stderr.
    Read-only commands run at once; changes ask on a terminal (or need --yes or a
    policy rule); destructive commands are denied unless a policy rule allows them.
    PROMPT `-` reads the prompt from stdin; with a PROMPT, piped stdin is attached as context.

    \b
    Examples:
      vpsagent ask -s web1 "why is the disk full?"
      journalctl -u nginx -n 200 | vpsagent ask -s web1 "why does nginx fail?"
      vpsagent ask -t web --read-only --json "which kernel do these run?"
      vpsagent ask --continue "and how do I fix it?"
      vpsagent ask --plan upgrade.yaml -t web "upgrade nginx and reload it"
      vpsagent ask -s web1 --save-test tests/nginx.yaml "install nginx and serve /srv/www"
      vpsagent ask --canary web1 -t web "upgrade openssl and restart nginx"

    With --plan FILE, Claude only investigates (read-only, in the read-only sandbox) and
    writes a plan for `vpsagent plan show` and `vpsagent apply`; nothing changes.
    With --save-test FILE, Claude then writes a test plan of the end state; it is validated
    and run once before it is written (one retry), for `vpsagent test run` in CI.
    With --canary NAME, Claude works on NAME only; the commands that changed it and
    succeeded become a plan (with the checks Claude gives), shown, then applied to the other
    servers chosen through `vpsagent apply` (same approvals, one server at a time).

    Exit codes: 0 done · 4 a command was denied for want of approval · 5 a server could
    not be reached (and no later call reached it) · 6 AI service failed (the conversation
    is saved: --continue) · 8 --max-turns/--max-cost reached. With --json, `errors` has an
    entry for each server left unreached and each denied command.
    """
    from vpsagent.render.agent import Display, denial_summary, exit_code, usage_line
    from vpsagent.services.ask import AskRequest
    from vpsagent.services.ask import ask as ask_service

    mode = _mode(read_only, yes)
    if continue_ and conversation_id is not None:
        raise click.UsageError("use either --continue or --conversation ID")
    context: str | None = None
    if list(prompt) == ["-"]:
        text = sys.stdin.read() if sys.stdin is not None else ""
    else:
        text = " ".join(prompt)
        if _stdin_is_data():
            context = sys.stdin.read()
    if not text.strip():
        raise click.UsageError("give a prompt (or `-` to read it from stdin)")
    request = AskRequest(
        prompt=text, servers=list(servers), tags=list(tags), context=context, model=model, mode=mode,
        dry_run=dry_run, max_turns=max_turns, max_cost=max_cost, conversation_id=conversation_id,
        continue_last=continue_, connect_timeout=connect_timeout, kind="ask",
    )
    _warn_deprecated(app, model)
    if sum(x is not None for x in (plan_file, test_file, canary)) > 1:
        raise click.UsageError("use one of --plan, --save-test and --canary")
    if canary is not None:
        return _ask_canary(app, request, canary, verbose=verbose)
    if plan_file is not None:
        return _ask_plan(app, request, plan_file, verbose=verbose)
    if test_file is not None:
        return _ask_save_test(app, request, test_file, verbose=verbose)
    display = Display(app.out, answer_to_stdout=not app.out.json_mode)
    try:
        result = ask_service(app.ctx, request, approve=make_approver(app), on_event=display)
    finally:
        display.finish()
    if verbose:
        app.out.note(usage_line(result))
    code = exit_code(result)
    if result.denied and not app.out.json_mode:
        app.out.warn(denial_summary(result.denied))
    for c in result.unreachable if not app.out.json_mode else ():
        app.out.warn(f"not reached: {c['unreachable']}")
    return app.out.emit(result, text=None, exit_code=code, errors=result.errors())


def _ask_plan(app: App, request: AskRequest, plan_file: str, *, verbose: bool) -> int:
    """`ask --plan`: the answer and tool activity on stderr, the plan (as `plan show`) on stdout."""
    from vpsagent.render.agent import Display, usage_line
    from vpsagent.render.apply import print_review
    from vpsagent.services.planning import ask_plan
    from vpsagent.services.plans import review

    display = Display(app.out, answer_to_stdout=False)
    try:
        res = ask_plan(app.ctx, request, plan_file, approve=make_approver(app), on_event=display)
    finally:
        display.finish()
    if verbose:
        app.out.note(usage_line(res.ask))
    rev = review(app.ctx, plan_file)
    app.out.note(f"wrote {plan_file} (sha256:{res.hash[:12]}, {plural(res.steps, 'step')}); review it, then "
                 f"`vpsagent apply {plan_file}`")
    data = {**res.ask.__dict__, "plan": rev.as_dict()}
    return app.out.emit(data, text=lambda c: print_review(c, rev))


def _ask_save_test(app: App, request: AskRequest, test_file: str, *, verbose: bool) -> int:
    """`ask --save-test`: the task as `ask` does it, then the test plan written to FILE."""
    from vpsagent.render.agent import Display, usage_line
    from vpsagent.services.planning import ask_save_test

    display = Display(app.out, answer_to_stdout=not app.out.json_mode)
    try:
        res = ask_save_test(app.ctx, request, test_file, approve=make_approver(app), on_event=display)
    finally:
        display.finish()
    if verbose:
        app.out.note(usage_line(res.ask))
    app.out.note(f"wrote {test_file}: test plan {res.name!r}, {plural(res.steps, 'step')}, passed once "
                 f"(attempt {res.attempts}); run it with `vpsagent test run {test_file}`")
    return app.out.emit({**res.ask.__dict__, "test_plan": {"path": test_file, "name": res.name, "steps": res.steps,
                                                           "attempts": res.attempts}}, text=None)


def _ask_canary(app: App, request: AskRequest, canary: str, *, verbose: bool) -> int:
    """`ask --canary`: the conversation on the canary, then `apply` of what changed it to the rest."""
    from vpsagent.cli.plan import plan_approver
    from vpsagent.render.agent import Display, usage_line
    from vpsagent.render.apply import ApplyProgress, apply_summary, print_review
    from vpsagent.services.planning import ask_canary

    display = Display(app.out, answer_to_stdout=not app.out.json_mode)
    try:
        res = ask_canary(app.ctx, request, canary, approve=make_approver(app), approve_plan=plan_approver(app),
                         show_plan=lambda rev: print_review(app.out.err, rev), on_event=display,
                         on_apply=ApplyProgress(app.out))
    finally:
        display.finish()
    if verbose:
        app.out.note(usage_line(res.ask))
    if res.applied is None:
        why = ("a command on the canary was denied" if res.ask.denied else
               "no other server was chosen" if not res.rest else "nothing changed the canary")
        app.out.warn(f"nothing applied to the other servers: {why}")
    else:
        app.out.note(f"plan {res.plan_path} (sha256:{(res.plan_hash or '')[:12]}, {res.steps} step(s)) "
                     f"applied to {', '.join(res.rest)}")
    data = {**res.ask.__dict__, "canary": canary, "plan": res.plan_path, "hash": res.plan_hash,
            "apply": res.applied.as_dict() if res.applied is not None else None}
    applied = res.applied
    return app.out.emit(data, text=(lambda c: apply_summary(app.out.err, applied)) if applied else None,
                        exit_code=res.exit_code)


# --------------------------------------------------------------------------- chat


def _read_line(interactive: bool) -> str | None:
    """The user's next line; None when they leave (Ctrl-D, the end of piped input)."""
    if not interactive:
        line = sys.stdin.readline()
        return line or None
    try:
        return input("you> ")
    except EOFError:
        sys.stderr.write("\n")  # Ctrl-D leaves the cursor after the prompt: end that line
        sys.stderr.flush()
        return None
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        raise


def _chat_command(app: App, session: OpenConversation, command: str) -> None:
    """What a chat answers itself, on stderr (stdout is the conversation's answers)."""
    from vpsagent.services.ask import LOCAL_COMMANDS

    if command == "/servers":
        for name, rec in session.scope.items():
            app.out.err.print(f"  {name}  {rec.user + '@' if rec.user else ''}{rec.host}", markup=False)
    elif command == "/help":
        for name, what in LOCAL_COMMANDS.items():
            app.out.err.print(f"  {name:<9} {what}", markup=False)
        app.out.err.print("  anything else is sent to Claude", markup=False)
    else:
        app.out.warn(f"unknown command {command}; /help lists the commands")


@click.command()
@_agent_options
@click.option("--conversation", "conversation_id", type=CONVERSATION, metavar="ID", help="Resume conversation ID.")
@click.option("-c", "--continue", "continue_", is_flag=True, help="Resume the last conversation.")
@pass_app
def chat(app: App, servers: tuple[str, ...], tags: tuple[str, ...], model: str | None, max_turns: int,
         max_cost: float | None, read_only: bool, yes: bool, dry_run: bool, verbose: bool,
         conversation_id: int | None, continue_: bool) -> int:
    """Talk with Claude about your servers, turn after turn (the interactive `ask`).

    Ctrl-C cancels the current turn, Ctrl-D (or /exit) leaves. Each line you type is one
    request; the conversation is stored and can be resumed with --continue.

    \b
    Example:
      vpsagent chat -s web1 -s db1
    """
    from vpsagent.errors import ExitCode, VpsAgentError
    from vpsagent.render.agent import Display, usage_line
    from vpsagent.services.ask import UNSTORED, AskRequest, ChatCallbacks, chat_loop, open_session

    if app.out.json_mode:
        raise click.UsageError("chat is interactive; use `vpsagent ask --json` in scripts")
    mode = _mode(read_only, yes)
    if continue_ and conversation_id is not None:
        raise click.UsageError("use either --continue or --conversation ID")
    interactive = sys.stdin is not None and sys.stdin.isatty()
    if interactive:
        try:
            import readline  # noqa: F401  (line editing and history for input())
        except ImportError:
            pass
    _warn_deprecated(app, model)
    request = AskRequest(prompt="", servers=list(servers), tags=list(tags), model=model, mode=mode,
                         dry_run=dry_run, conversation_id=conversation_id, continue_last=continue_)
    session = open_session(app.ctx, request)
    which = "new conversation" if session.conversation_id == UNSTORED else f"conversation #{session.conversation_id}"
    app.out.note(f"{which} on {', '.join(session.servers)} · model {session.model} · /help for commands, "
                 "Ctrl-D to leave")
    display = Display(app.out, answer_to_stdout=True)

    def failed(exc: VpsAgentError) -> None:
        display.finish()
        if exc.exit_code == ExitCode.INTERRUPTED:
            app.out.warn("turn cancelled")
        else:
            app.out.err.print(f"error: {exc.line()}", markup=False)

    def done(result: AskResult) -> None:
        display.finish()
        if verbose:
            app.out.note(usage_line(result))

    try:
        summary = chat_loop(session, ChatCallbacks(read_line=functools.partial(_read_line, interactive),
                                                   on_event=display, approve=make_approver(app),
                                                   on_turn_done=done, on_turn_failed=failed,
                                                   on_local=functools.partial(_chat_command, app, session)),
                            max_turns=max_turns, max_cost=max_cost)
    finally:
        session.close()
    if session.conversation_id != UNSTORED:
        app.out.note(f"conversation #{session.conversation_id} is stored: `vpsagent chat --continue` goes on with it")
    return int(ExitCode.NEEDS_APPROVAL) if summary.denied and not interactive else 0


# --------------------------------------------------------------------------- conversations


@click.group()
def conversations() -> None:
    """Stored conversations of `ask` and `chat`: list, show, export.

    \b
    Example:
      vpsagent conversations list
      vpsagent conversations export 12 --format md > incident.md
    """


@conversations.command("list")
@click.option("--limit", type=Limit(), default=50, show_default=True, help="Show at most this many.")
@click.option("--mode", type=click.Choice(["ask", "chat", "testing", "support"]), help="Only this kind.")
@pass_app
def conversations_list(app: App, limit: int, mode: str | None) -> int:
    """List conversations, newest first.

    \b
    Example:
      vpsagent conversations list --limit 10
    """
    from vpsagent.render import table, when
    from vpsagent.services.conversations import list_conversations

    rows = list_conversations(app.engine, mode=mode, limit=limit)

    def text(c: LazyConsole) -> None:
        if not rows:
            app.out.note("no conversations yet: start one with `vpsagent ask -s SERVER \"...\"`")
            return
        c.print(table(["ID", "UPDATED", "MODE", "SERVERS", "MSGS", "COST", "TITLE"],
                      [[r.id, when(r.updated_at), r.mode, ",".join(r.servers), r.messages,
                        f"${r.cost_usd:.4f}", r.title] for r in rows], flex=("TITLE", "SERVERS")))

    return app.out.emit({"conversations": rows}, text=text)


@conversations.command("show")
@click.argument("conversation_id", type=CONVERSATION, metavar="ID")
@pass_app
def conversations_show(app: App, conversation_id: int) -> int:
    """Show one conversation as Markdown (with --json: every stored message).

    \b
    Example:
      vpsagent conversations show 12
    """
    from vpsagent.render.conversations import export
    from vpsagent.services.conversations import show_conversation

    if app.out.json_mode:
        return app.out.emit(show_conversation(app.engine, conversation_id))
    return app.out.emit(None, text=export(show_conversation(app.engine, conversation_id), "md").rstrip("\n"))


@conversations.command("export")
@click.argument("conversation_id", type=CONVERSATION, metavar="ID")
@click.option("--format", "fmt", type=click.Choice(["md", "json"]), default="md", show_default=True, help="Markdown or JSON.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write to this file instead of stdout.")
@pass_app
def conversations_export(app: App, conversation_id: int, fmt: str, output: str | None) -> int:
    """Export a conversation (Markdown for an incident report, JSON for programs).

    \b
    Example:
      vpsagent conversations export 12 --format json -o conv12.json
    """
    from vpsagent.render.conversations import export
    from vpsagent.services.conversations import show_conversation

    doc = export(show_conversation(app.engine, conversation_id), fmt)
    if output:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(doc)
        return app.out.emit({"conversation_id": conversation_id, "path": output, "format": fmt},
                            text=lambda c: app.out.note(f"wrote {output}"))
    if app.out.json_mode and fmt == "json":
        import json

        return app.out.emit(json.loads(doc))
    if app.out.json_mode:
        return app.out.emit({"conversation_id": conversation_id, "format": fmt, "content": doc})
    sys.stdout.write(doc)
    sys.stdout.flush()
    return 0
