"""`vpsagent history`: who ran what, where, when, with what result."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from vpsagent.cli._common import App, Limit, RowId, pass_app
from vpsagent.redact import inert
from vpsagent.services.history import SOURCES
from vpsagent.wording import plural

if TYPE_CHECKING:
    from vpsagent.render import LazyConsole
    from vpsagent.services.history import HistoryEntry

CSV_COLUMNS = ("id", "started_at", "finished_at", "status", "source", "server", "user", "sudo",
               "exit_code", "duration_ms", "command", "error")


def _dur(ms: int | None) -> str:
    if ms is None:
        return ""
    return f"{ms / 1000:.2f}s" if ms < 60_000 else f"{ms / 60000:.1f}m"


def _as_run(e: HistoryEntry) -> str:
    # server text made inert for the terminal; one entry per line
    return inert(("sudo " if e.sudo else "") + e.command.replace("\n", " ⏎ "))


def _result(e: HistoryEntry) -> str:
    if e.status == "failed" and e.exit_code is not None:
        return f"failed ({e.exit_code})"
    return e.status


@click.group(name="history", invoke_without_command=True)
@click.option("-s", "--server", metavar="NAME", help="Only this server.")
@click.option("--source", type=click.Choice(list(SOURCES)),
              help="Only commands from this part of vpsagent.")
@click.option("--since", metavar="WHEN", help="Since a duration ago (1h, 30m, 2d) or a date (2026-11-01).")
@click.option("--status", type=click.Choice(["ok", "failed", "denied", "interrupted", "running", "timeout",
                                             "error", "connection_lost"]),
              help="Only this outcome (failed includes timeout, error, connection_lost).")
@click.option("--grep", metavar="TEXT", help="Only commands containing TEXT (case-insensitive).")
@click.option("--user", "user_email", metavar="EMAIL", help="Only commands run by this logged-in user.")
@click.option("--limit", type=Limit(min=0), default=50, show_default=True, help="At most N entries, newest first (0: all).")
@click.option("--csv", "csv_", is_flag=True, help="CSV on stdout (one header line).")
@pass_app
@click.pass_context
def history(ctx: click.Context, app: App, server: str | None, source: str | None, since: str | None,
            status: str | None, grep: str | None, user_email: str | None, limit: int, csv_: bool) -> int | None:
    """The audit log: every command vpsagent ran on a server, newest first.

    \b
    Examples:
      vpsagent history --since 1h
      vpsagent history -s web1 --status failed
      vpsagent history --source ask --grep systemctl --json
      vpsagent history --since 2026-11-01 --limit 0 --csv > audit.csv
      vpsagent history show 42
      vpsagent history verify
    """
    if ctx.invoked_subcommand is not None:
        return None
    from vpsagent.errors import UsageError
    from vpsagent.services.history import iter_history

    if csv_ and app.out.json_mode:
        raise UsageError("choose one of --json and --csv")
    # a stream of rows: --csv and --json write each as it comes (flat memory at any size)
    stream = iter_history(app.engine, server=server, source=source, since=since, status=status,
                          grep=grep, user=user_email, limit=limit)
    if app.out.json_mode:
        return app.out.emit_list("entries", stream)
    if csv_:
        import csv
        import sys

        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(CSV_COLUMNS)
        for e in stream:
            w.writerow([e.id, e.started_at.isoformat() if e.started_at else "",
                        e.finished_at.isoformat() if e.finished_at else "", e.status, e.source, e.server,
                        e.user_email or e.user or "", int(e.sudo), "" if e.exit_code is None else e.exit_code,
                        "" if e.duration_ms is None else e.duration_ms, e.command, e.error or ""])
        sys.stdout.flush()
        return 0
    entries = list(stream)

    def text(console: LazyConsole) -> None:
        if not entries:
            app.out.note("no matching history entries")
            return
        from vpsagent.render import table, when

        # One entry per line (so `vpsagent history | grep` works); on a terminal the
        # command is cut to fit, `history show ID` has it whole.
        console.print(table(
            ("ID", "STARTED", "SERVER", "SOURCE", "USER", "RESULT", "TIME", "COMMAND"),
            [(e.id, when(e.started_at), e.server, e.source, e.user_email or e.user or "", _result(e),
              _dur(e.duration_ms), _as_run(e)) for e in entries], flex=("COMMAND", "USER")))

    return app.out.emit({"entries": entries, "count": len(entries)}, text)


@history.command(name="show")
@click.argument("entry_id", type=RowId("history entry", "`vpsagent history` lists them"), metavar="ID")
@pass_app
def history_show(app: App, entry_id: int) -> int:
    """One entry in full: output excerpts, hashes, who and where.

    \b
    Example:
      vpsagent history show 42
    """
    from vpsagent.services.history import show_entry

    e = show_entry(app.engine, entry_id)

    def text(console: LazyConsole) -> None:
        from vpsagent.render import key_values, when

        console.print(key_values([
            ("id", e.id), ("server", e.server), ("command", inert(e.command)), ("sudo", "yes" if e.sudo else "no"),
            ("source", e.source), ("status", _result(e)), ("exit code", e.exit_code),
            ("result", "unknown — vpsagent ended before recording it; check the server" if e.outcome_unknown
             else None),
            ("started", when(e.started_at)), ("finished", when(e.finished_at)),
            ("duration", _dur(e.duration_ms)), ("user", e.user), ("from", f"{e.hostname} pid {e.pid}"),
            ("decision", inert(f"{e.decision}: {e.decision_reason}") if e.decision else None),
            ("conversation", e.conversation_id), ("test run", e.test_run_id),
            ("error", inert(e.error) if e.error else None),
            ("stdout", f"{e.stdout_bytes} bytes, sha256 {e.stdout_sha256}" if e.stdout_bytes is not None else None),
            ("stderr", f"{e.stderr_bytes} bytes, sha256 {e.stderr_sha256}" if e.stderr_bytes is not None else None),
        ]), markup=False)
        for label, body in (("stdout", e.stdout_excerpt), ("stderr", e.stderr_excerpt)):
            if body:
                console.print(f"\n--- {label} (excerpt) ---", markup=False)
                console.print(inert(body.rstrip("\n")), markup=False, highlight=False)

    return app.out.emit({"entry": e}, text)


@history.command(name="verify")
@click.option("--anchor", metavar="ID:HASH",
              help="The head an earlier verify printed: also detects rows deleted from the end.")
@pass_app
def history_verify(app: App, anchor: str | None) -> int:
    """Check the audit log's hash chain: exit 1 naming the first edited or orphaned row.

    A chain cannot show rows deleted from its end; record the printed head somewhere
    else (a CI log, a ticket) and pass it back with --anchor to detect that too.

    \b
    Examples:
      vpsagent history verify
      vpsagent history verify --anchor 1042:3f5c...e9   # the head recorded last time
    """
    from vpsagent.errors import ExitCode
    from vpsagent.services.history import verify_history

    res = verify_history(app.engine, anchor)
    if res.ok:
        head = f"; head {res.anchor}" if res.anchor else ""
        return app.out.emit(res, f"audit log intact: {plural(res.checked, 'row')} verified{head}")
    message = f"audit log tampered: row {res.first_bad_id}: {res.problem}"
    if not app.out.json_mode:
        app.out.err.print(f"error: {message}", markup=False)
    return app.out.emit(res, None, exit_code=ExitCode.FAILURE,
                        errors=[{"code": "audit_tampered", "message": message}])
