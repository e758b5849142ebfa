"""`vpsagent safety`: the safety gate, from the command line."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from vpsagent.cli._common import App, pass_app

if TYPE_CHECKING:
    from vpsagent.render import LazyConsole


@click.group(name="safety")
def safety() -> None:
    """The safety gate that judges the agent's commands (docs/safety.md).

    \b
    Example:
      vpsagent safety check 'rm -rf /srv/app/cache'
    """


@safety.command(name="check")
@click.argument("commands", nargs=-1, metavar="[COMMAND]...|-")
@click.option("-0", "--null", "null", is_flag=True,
              help="With -: commands on stdin are separated by NUL bytes (for multi-line commands).")
@click.option("--mode", type=click.Choice(["default", "yes", "read-only"]), default="default", show_default=True,
              help="Decide as `ask` would with this mode (--yes, --read-only).")
@click.option("-s", "--server", metavar="NAME", help="Apply the policy rules of this server and of its tags.")
@pass_app
def safety_check(app: App, commands: tuple[str, ...], null: bool, mode: str, server: str | None) -> int:
    """What the safety gate makes of commands: class, decision, reason and rule. Nothing runs.

    Each COMMAND is one shell command line; `-` reads them from stdin, one per line (blank
    lines skipped), or NUL-separated with -0. The decision is the one `vpsagent ask` would
    take in --mode with the policy file's rules (and, with -s, the server's and its tags').

    The exit status is 0 whatever the decisions — judging is not failing — so CI can read
    --json (`data.results`: command, risk, decision, reason, rule, in input order); it is 2
    for bad input or a broken policy file.

    \b
    Examples:
      vpsagent safety check 'systemctl restart nginx' './deploy.sh'
      vpsagent safety check --mode yes -s web1 - < runbook.txt
      vpsagent safety check --json - < runbook.txt | jq -e 'all(.data.results[]; .decision == "allow")'
      printf 'cd /srv\\nrm -rf cache\\0df -h\\0' | vpsagent safety check -0 -
    """
    from vpsagent.services.safety_check import check_commands

    lines = _commands(commands, null)
    report = check_commands(app.settings, lines, mode=mode, server=server, engine=lambda: app.engine)

    def text(console: LazyConsole) -> None:
        width = max((len(r.risk.value) for r in report.results), default=0)
        for r in report.results:
            one_line = r.command.replace("\n", " ⏎ ")
            console.print(f"{r.decision.value:<5}  {r.risk.value:<{width}}  {one_line}  — {r.reason}",
                          markup=False, highlight=False, crop=False, overflow="ignore")

    return app.out.emit(report, text)


def _commands(commands: tuple[str, ...], null: bool) -> list[str]:
    from vpsagent.errors import InvalidInput

    if commands == ("-",):
        data = sys.stdin.read()
        items = data.split("\0") if null else data.splitlines()
        return [c for c in items if c.strip()]
    if "-" in commands:
        raise InvalidInput("give commands as arguments, or - alone to read them from stdin")
    if null:
        raise InvalidInput("-0 goes with -: NUL-separated commands on stdin")
    if not commands:
        raise InvalidInput("give one or more commands, or - to read them from stdin",
                           hint="vpsagent safety check 'systemctl restart nginx'")
    return list(commands)
