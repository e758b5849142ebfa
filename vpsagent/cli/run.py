"""`vpsagent run`: one shell command on one server, a group, or all — streamed, audited."""

from __future__ import annotations

import click

from vpsagent.cli._common import (
    App,
    Duration,
    connect_timeout_option,
    lock_options,
    pass_app,
    quiet_stdout,
    selection_options,
)


@click.command(name="run")
@click.argument("command", nargs=-1, required=True)
@selection_options(all_help="Every server in the inventory (not `local`).")
@click.option("--sudo", is_flag=True, help="Run through sudo (the stored sudo password answers its prompt).")
@click.option("--timeout", type=Duration(maximum=7 * 86400), metavar="DURATION",
              help="Stop the command after this long (30, 90s, 5m, 2h; status timeout).")
@click.option("--forks", type=int, metavar="N", help="Servers at once (default 64).")
@click.option("--serial", type=int, metavar="N", help="Run in batches of N servers, one batch after the other.")
@click.option("--max-fail", type=int, metavar="N", help="Start no new server after N have failed.")
@connect_timeout_option
@lock_options
@pass_app
def run(app: App, command: tuple[str, ...], selection: object, sudo: bool, timeout: float | None,
        forks: int | None, serial: int | None, max_fail: int | None, connect_timeout: float | None,
        lock: bool, lock_wait: float | None) -> int:
    """Run a shell command on servers, without AI. Every run is recorded (`vpsagent history`).

    One server: its stdout and stderr pass through unchanged as they arrive. Several:
    in parallel, each line prefixed with the server name, a summary on stderr.

    \b
    Examples:
      vpsagent run -s web1 'cat /var/log/app.log' | grep ERROR
      vpsagent run -t web --serial 2 --max-fail 1 'systemctl restart app'
      vpsagent run --all --json uptime
      vpsagent run -s db1 --sudo --timeout 30 -- journalctl -u postgresql -n 50
      vpsagent run -s web1 --lock --lock-wait 5m 'certbot renew'   # from cron

    \b
    Exit status: 0 all succeeded · 1 a command failed or timed out ·
    5 a server was unreachable (or SSH auth / host key failed) · 75 --lock: another
    run holds the lock on a server (nothing was run) · 130 interrupted.
    """
    from vpsagent.render.run import RunDisplay
    from vpsagent.services.fleet import Selection
    from vpsagent.services.run import RunRequest, run_command

    assert isinstance(selection, Selection)
    request = RunRequest(command=" ".join(command), selection=selection, sudo=sudo, timeout=timeout,
                         forks=forks, serial=serial, max_fail=max_fail, keep_output=app.out.json_mode,
                         connect_timeout=connect_timeout, lock=lock, lock_wait=lock_wait)
    display = RunDisplay(app.out)
    try:
        outcome = run_command(app.ctx, request, on_start=display.start, on_output=display.on_output,
                              on_server_done=display.server_done)
    except BrokenPipeError:
        # `vpsagent run ... | head`: the reader left, the remote command was stopped and its
        # row marked; leave quietly with the shell's SIGPIPE status, as `cli.main` does.
        return quiet_stdout()
    if display.broken:
        return quiet_stdout()
    return display.finish(outcome)
