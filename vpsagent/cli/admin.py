"""`vpsagent doctor`, `vpsagent db ...`, `vpsagent secret rekey`: operations on vpsagent itself."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import click

from vpsagent.cli._common import App, pass_app
from vpsagent.wording import plural

if TYPE_CHECKING:
    from vpsagent.render import LazyConsole


# how each check's status is shown: its mark and, on a colour terminal, its colour
_MARKS = {"ok": ("ok  ", None), "warn": ("warn", "yellow"), "fail": ("FAIL", "bold red")}


@click.command()
@click.option("--servers", "servers", is_flag=True,
              help="Also connect to every server: its host key and connection time (pins nothing).")
@pass_app
def doctor(app: App, servers: bool) -> int:
    """Show every path and setting in use (secrets masked) and check that each part works.

    Exit 0 when no check failed (warnings, such as a missing ANTHROPIC_API_KEY, do not fail).

    \b
    Examples:
      vpsagent doctor
      vpsagent doctor --servers --json
    """
    from vpsagent.errors import ConfigError
    from vpsagent.render import key_values
    from vpsagent.services.admin import Check, DoctorReport
    from vpsagent.services.admin import doctor as run_doctor

    try:
        report = run_doctor(app.settings)
    except ConfigError as exc:  # a broken config file: that is the finding, not a reason to stop
        report = DoctorReport(paths={}, settings={}, checks=[Check("config", "fail", exc.line())])
    if servers and report.ok:
        from vpsagent.services.admin import doctor_servers

        report.checks += doctor_servers(app.ctx)

    def shown(values: dict[str, str | None]) -> list[tuple[str, str]]:
        def one(k: str, v: str | None) -> str:
            source = f"  [{report.sources[k]}]" if k in report.sources else ""
            note = f" ({report.notes[k]})" if k in report.notes else ""
            value = v if v is not None else ("" if k in report.notes else "(not set)")
            return (value + source + note).strip()

        return [(k, one(k, v)) for k, v in values.items()]

    def text(c: LazyConsole) -> None:
        if report.paths:
            c.print("[bold]paths[/bold]")
            c.print(key_values(shown(report.paths)), markup=False)
            c.print("\n[bold]settings[/bold]")
            c.print(key_values(shown(report.settings)), markup=False)
            c.print()
        c.print("[bold]checks[/bold]")
        for chk in report.checks:
            mark = _MARKS[chk.status]
            c.print(f"{mark[0]}  {chk.name}: {chk.detail}", markup=False, style=mark[1] if not c.plain else None)

    return app.out.emit(report, text=text, exit_code=0 if report.ok else 1,
                        errors=[{"code": "check_failed", "message": f"{c.name}: {c.detail}"}
                                for c in report.checks if c.status == "fail"])


@click.group()
def db() -> None:
    """The database: schema revision and upgrades.

    \b
    Example:
      DATABASE_URL=postgresql://vpsagent@db.internal/vpsagent vpsagent db upgrade
    """


@db.command("upgrade")
@pass_app
def db_upgrade(app: App) -> int:
    """Apply schema migrations (also done automatically on first use).

    \b
    Example:
      vpsagent db upgrade
    """
    from vpsagent.services.admin import db_upgrade as upgrade

    r = upgrade(app.settings)
    msg = (f"{r.url}: schema {r.revision} (was {r.before or 'empty'})" if r.before != r.revision
           else f"{r.url}: schema {r.revision}, already current")
    return app.out.emit(r, text=msg)


@db.command("current")
@pass_app
def db_current(app: App) -> int:
    """Show the database's schema revision and the one this vpsagent expects.

    \b
    Example:
      vpsagent db current --json
    """
    from vpsagent.services.admin import db_current as current

    r = current(app.settings)
    state = ("current" if r.revision == r.head else
             f"empty; this vpsagent creates {r.head} on first use" if r.revision is None else
             f"this vpsagent expects {r.head}")
    return app.out.emit(r, text=f"{r.url}: schema {r.revision or '-'} ({state})")


@click.group()
def secret() -> None:
    """The master secret that encrypts stored credentials."""


@secret.command("rekey")
@pass_app
def secret_rekey(app: App) -> int:
    """Re-encrypt every stored credential under a new secret, in one transaction.

    The new secret comes from VPSAGENT_NEW_SECRET or stdin. With a key file (no
    VPSAGENT_SECRET set) and neither given, a random one is generated into the key file.

    \b
    Example:
      VPSAGENT_NEW_SECRET="$(openssl rand -base64 32)" vpsagent secret rekey
    """
    from vpsagent.secret import Secret
    from vpsagent.services.admin import rekey

    new = os.environ.get("VPSAGENT_NEW_SECRET")
    if not new and sys.stdin is not None and not sys.stdin.isatty():
        new = sys.stdin.readline().rstrip("\r\n") or None
    r = rekey(app.settings, app.engine, Secret(new) if new else None, app.out.note)
    return app.out.emit(r, text=f"re-encrypted {plural(r.fields, 'credential')} in {plural(r.records, 'record')}; {r.next_step}")
