"""`vpsagent ask`, `vpsagent chat`, `vpsagent conversations`: Claude working on your servers."""

from __future__ import annotations

import io
import os
import stat
import sys
from typing import IO, Any

import click

from vpsagent.cli._common import App, pass_app
from vpsagent.errors import ExitCode

# How much of each command's output is echoed on stderr while it runs: enough to see
# what happens, not a 5 MB log scrolling past (the model gets its own bounded copy).
ECHO_LINES = 8
ECHO_BYTES = 2048


def _agent_options(f):  # type: ignore[no-untyped-def]
    opts = [
        click.option("-s", "--server", "servers", multiple=True, metavar="NAME", help="Server the agent may use (repeatable)."),
        click.option("-t", "--tag", "tags", multiple=True, metavar="TAG", help="Every server with this tag (repeatable)."),
        click.option("--model", metavar="MODEL", help="Claude model (default: VPSAGENT_MODEL or a current Sonnet)."),
        click.option("--max-turns", type=click.IntRange(min=1), default=20, show_default=True, help="Stop after this many model turns (exit 8)."),
        click.option("--max-cost", type=click.FloatRange(min=0, min_open=True), metavar="USD", help="Stop when the estimated cost passes this (exit 8)."),
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


def _select(app: App, servers: tuple[str, ...], tags: tuple[str, ...]) -> list[str]:
    if not servers and not tags:
        return []
    from vpsagent.remote.hosts import select_servers

    return select_servers(app.engine, servers, tags)


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


_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x00, 0x09), *range(0x0b, 0x20), *range(0x7f, 0xa0)]}


def _safe(text: str | None) -> str:
    """Text from the model or a server, made inert for the terminal: escape sequences could
    otherwise move the cursor and redraw the approval prompt to show a different command."""
    return (text or "").translate(_CONTROL)


def make_approver(app: App):  # type: ignore[no-untyped-def]
    """The approve(call) callback for a terminal, or None when there is no terminal or --json."""
    if app.out.json_mode or _tty_in() is None:
        return None

    def approve(call: Any) -> Any:
        from vpsagent.safety.policy import Decision

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


# --------------------------------------------------------------------------- streaming display


class Display:
    """Writes the answer to stdout as it streams and tool activity, compact, to stderr."""

    def __init__(self, app: App, *, answer_to_stdout: bool):
        self.app = app
        self.answer_to_stdout = answer_to_stdout
        self.mid_line = False
        self.echoed: dict[str, int] = {}
        self.lines: dict[str, int] = {}

    def _break_line(self) -> None:
        # keep stderr lines from starting mid-answer on a terminal; pipes get pure data
        if self.mid_line and sys.stdout.isatty():
            sys.stdout.write("\n")
            sys.stdout.flush()
            self.mid_line = False

    def __call__(self, ev: Any) -> None:
        if ev.kind == "text":
            if self.answer_to_stdout:
                sys.stdout.write(ev.text)
                sys.stdout.flush()
                self.mid_line = not ev.text.endswith("\n")
            return
        self._break_line()
        err = self.app.out.err
        if ev.kind == "notice":
            self.app.out.warn(ev.text)
            return
        tev = ev.tool
        call = tev.call
        if tev.kind == "call":
            if call.name == "list_servers":
                err.print("→ list_servers", markup=False, style="dim")
                return
            mark = {"allow": "→", "deny": "✗", "dry_run": "·"}.get(call.decision or "", "✗")
            tail = "" if call.decision == "allow" else f"  [{call.decision}{': ' + call.policy_reason if call.policy_reason else ''}]"
            err.print(_safe(f"{mark} {call.server or '?'} $ {call.command or call.name}{tail}"), markup=False,
                      style="cyan" if call.decision == "allow" else "yellow")
        elif tev.kind == "output":
            shown = self.echoed.get(call.id, 0)
            lines = self.lines.get(call.id, 0)
            if shown >= ECHO_BYTES or lines >= ECHO_LINES:
                return
            text = tev.data[: ECHO_BYTES - shown].decode("utf-8", "replace")
            keep = text.splitlines()[: ECHO_LINES - lines]
            self.echoed[call.id] = shown + len(tev.data)
            self.lines[call.id] = lines + len(keep)
            for line in keep:
                err.print(f"  {_safe(line)}", markup=False, style="dim")
        elif tev.kind == "result" and tev.outcome is not None:
            o = tev.outcome
            if o.executed and call.name == "run_command":
                more = " (output cut on screen)" if self.echoed.get(call.id, 0) >= ECHO_BYTES or self.lines.get(call.id, 0) >= ECHO_LINES else ""
                err.print(f"  ← exit {o.exit_code} in {o.duration_s:.2f}s{more}", markup=False, style="dim")
            elif o.is_error and not o.denied:
                # invalid calls, unreachable servers, unreadable files: the person running it
                # must see why, not only the model (denials are already on the call line)
                first = o.content.strip().splitlines()[0] if o.content.strip() else "error"
                err.print(f"  ✗ {_safe(first)}", markup=False, style="yellow")

    def finish(self) -> None:
        if self.mid_line and self.answer_to_stdout:
            sys.stdout.write("\n")
            sys.stdout.flush()
            self.mid_line = False


def _warn_deprecated(app: App, model: str | None) -> None:
    from vpsagent.agent.client import is_deprecated

    name = model or app.settings.model
    retired = is_deprecated(name)
    if retired:
        app.out.warn(f"model {name} is deprecated (retired {retired}); leave --model/VPSAGENT_MODEL unset for the current default")


def _usage_line(result: Any) -> str:
    u = result.usage
    return (f"conversation #{result.conversation_id} · {result.turns} turns · tokens {u['input_tokens']} in, "
            f"{u['output_tokens']} out, {u['cache_read_tokens']} cache read, {u['cache_write_tokens']} cache write · "
            f"est. ${result.cost_usd:.4f}")


def _exit_code(result: Any) -> int:
    if result.denied:
        return int(ExitCode.NEEDS_APPROVAL)
    if result.stop_reason == "refusal":
        return int(ExitCode.FAILURE)
    return int(ExitCode.OK)


# --------------------------------------------------------------------------- ask


@click.command()
@_agent_options
@click.option("-c", "--continue", "continue_", is_flag=True, help="Continue the last conversation.")
@click.option("--conversation", "conversation_id", type=int, metavar="ID", help="Continue conversation ID.")
@click.argument("prompt", nargs=-1)
@pass_app
def ask(app: App, servers: tuple[str, ...], tags: tuple[str, ...], model: str | None, max_turns: int,
        max_cost: float | None, read_only: bool, yes: bool, dry_run: bool, verbose: bool, continue_: bool,
        conversation_id: int | None, prompt: tuple[str, ...]) -> int:
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

    Exit codes: 0 done · 4 a command was denied for want of approval · 6 AI service
    failed (the conversation is saved: --continue) · 8 --max-turns/--max-cost reached.
    """
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
        prompt=text, servers=_select(app, servers, tags), context=context, model=model, mode=mode,
        dry_run=dry_run, max_turns=max_turns, max_cost=max_cost, conversation_id=conversation_id,
        continue_last=continue_,
    )
    _warn_deprecated(app, model)
    display = Display(app, answer_to_stdout=not app.out.json_mode)
    try:
        result = ask_service(app.settings, app.engine, request, keyring_get=lambda: app.keyring,
                             approve=make_approver(app), on_event=display, notify=app.out.note)
    finally:
        display.finish()
    if verbose:
        app.out.note(_usage_line(result))
    code = _exit_code(result)
    if result.denied and not app.out.json_mode:
        app.out.warn(_denial_summary(result.denied))
    return app.out.emit(result, text=None, exit_code=code)


_WAYS = {
    "change": "changes: approve them on a terminal or rerun with --yes",
    "unknown": "unknown commands: approve them on a terminal or allow the exact command in the policy (--yes does not)",
    "destructive": "destructive commands: only a policy allow rule naming them (--yes never does)",
    "read_only_mode": "--read-only allows inspection only",
    "deny_rule": "commands a policy deny rule names never run",
}


def _denial_summary(denied: list[dict[str, Any]]) -> str:
    """One line after the answer: how many were denied and what would let each kind run.

    Switches on each denial's cause (outcomes.DenyCause) and risk, never on the prose."""
    kinds: list[str] = []
    for d in denied:
        cause, risk = d.get("cause"), d.get("risk")
        if cause == "no_approver" and risk != "destructive":  # a destructive one asked only by an ask rule
            kinds.append("unknown" if risk == "unknown" else "change")
        elif cause in _WAYS:
            kinds.append(str(cause))
    ways = [_WAYS[k] for k in _WAYS if k in kinds]
    n = len(denied)
    head = f"{n} command{'s were' if n > 1 else ' was'} denied (reasons above)"
    return head + (": " + "; ".join(ways) if ways else "")


# --------------------------------------------------------------------------- chat


@click.command()
@_agent_options
@click.option("--conversation", "conversation_id", type=int, metavar="ID", help="Resume conversation ID.")
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
    from vpsagent import errors
    from vpsagent.services.ask import AskRequest, open_session, run_turn

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
    request = AskRequest(prompt="(chat)", servers=_select(app, servers, tags), model=model, mode=mode,
                         dry_run=dry_run, conversation_id=conversation_id, continue_last=continue_)
    session = open_session(app.settings, app.engine, request, keyring_get=lambda: app.keyring, notify=app.out.note)
    approve = make_approver(app)
    denied_any = False
    app.out.note(f"conversation #{session.conversation_id} on {', '.join(session.servers)} · model {session.model} · Ctrl-D to leave")
    first = conversation_id is None and not continue_
    try:
        while True:
            try:
                line = input("you> ") if interactive else sys.stdin.readline()
            except EOFError:
                break
            except KeyboardInterrupt:
                sys.stderr.write("\n")
                continue
            if not interactive and line == "":
                break
            line = line.strip()
            if not line:
                continue
            if line in ("/exit", "/quit"):
                break
            if first:
                from vpsagent.services.ask import _touch

                _touch(app.engine, session.conversation_id, title=line[:500])
                first = False
            display = Display(app, answer_to_stdout=True)
            try:
                result = run_turn(session, line, max_turns=max_turns, max_cost=max_cost, approve=approve, on_event=display)
            except errors.Interrupted:
                display.finish()
                app.out.warn("turn cancelled")
                continue
            except (errors.BudgetExceeded, errors.AIServiceError) as exc:
                display.finish()
                app.out.err.print(f"error: {exc.line()}", markup=False)
                continue
            except KeyboardInterrupt:
                display.finish()
                app.out.warn("turn cancelled")
                continue
            display.finish()
            denied_any = denied_any or bool(result.denied)
            if verbose:
                app.out.note(_usage_line(result))
    finally:
        session.close()
    return int(ExitCode.NEEDS_APPROVAL) if denied_any and not interactive else 0


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
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Show at most this many.")
@click.option("--mode", type=click.Choice(["chat", "testing", "support"]), help="Only this kind.")
@pass_app
def conversations_list(app: App, limit: int, mode: str | None) -> int:
    """List conversations, newest first.

    \b
    Example:
      vpsagent conversations list --limit 10
    """
    from vpsagent.render import table
    from vpsagent.services.conversations import list_conversations

    rows = list_conversations(app.engine, mode=mode, limit=limit)

    def text(c: Any) -> None:
        if not rows:
            app.out.note("no conversations yet: start one with `vpsagent ask -s SERVER \"...\"`")
            return
        c.print(table(["ID", "UPDATED", "MODE", "SERVERS", "MSGS", "COST", "TITLE"],
                      [[r.id, r.updated_at.strftime("%Y-%m-%d %H:%M"), r.mode, ",".join(r.servers), r.messages,
                        f"${r.cost_usd:.4f}", r.title[:60]] for r in rows]))

    return app.out.emit({"conversations": rows}, text=text)


@conversations.command("show")
@click.argument("conversation_id", type=int, metavar="ID")
@pass_app
def conversations_show(app: App, conversation_id: int) -> int:
    """Show one conversation as Markdown (with --json: every stored message).

    \b
    Example:
      vpsagent conversations show 12
    """
    from vpsagent.services.conversations import export_conversation, show_conversation

    if app.out.json_mode:
        return app.out.emit(show_conversation(app.engine, conversation_id))
    return app.out.emit(None, text=export_conversation(app.engine, conversation_id, "md").rstrip("\n"))


@conversations.command("export")
@click.argument("conversation_id", type=int, metavar="ID")
@click.option("--format", "fmt", type=click.Choice(["md", "json"]), default="md", show_default=True, help="Markdown or JSON.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write to this file instead of stdout.")
@pass_app
def conversations_export(app: App, conversation_id: int, fmt: str, output: str | None) -> int:
    """Export a conversation (Markdown for an incident report, JSON for programs).

    \b
    Example:
      vpsagent conversations export 12 --format json -o conv12.json
    """
    from vpsagent.services.conversations import export_conversation

    doc = export_conversation(app.engine, conversation_id, fmt)
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
