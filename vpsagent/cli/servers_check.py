"""`vpsagent servers check`: connect, authenticate, pin or verify the host key."""

from __future__ import annotations

import click

from vpsagent.cli._common import App, pass_app


@click.command(name="check")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("-t", "--tag", "tags", multiple=True, metavar="TAG", help="Every server with this tag.")
@click.option("--all", "all_", is_flag=True, help="Every server in the inventory.")
@click.option("--update-host-key", is_flag=True,
              help="Accept and pin the key the server presents now (after a legitimate reinstall).")
@click.option("--timeout", "connect_timeout", type=float, metavar="S", help="Connect timeout (default 10).")
@pass_app
def servers_check(app: App, names: tuple[str, ...], tags: tuple[str, ...], all_: bool, update_host_key: bool,
                  connect_timeout: float | None) -> int:
    """Connect and authenticate to servers; pin the host key on first contact, verify it after.

    A changed host key fails (exit 5) showing both fingerprints; `--update-host-key`
    replaces the pinned key, and only when you ask.

    \b
    Examples:
      vpsagent servers check web1
      vpsagent servers check --all --json
      vpsagent servers check web1 --update-host-key
    """
    from vpsagent.errors import UsageError
    from vpsagent.remote.hosts import select_servers
    from vpsagent.services.check import check_servers, exit_code_for

    if connect_timeout is not None and connect_timeout <= 0:
        from vpsagent.errors import InvalidInput

        raise InvalidInput("--timeout must be a positive number of seconds")
    if update_host_key and (tags or all_):
        # re-trusting keys is a per-server decision after checking with the admin of each
        raise UsageError("--update-host-key takes server names, not -t or --all",
                         hint="name each server whose new key you have verified")
    chosen = select_servers(app.engine, names, tags, all_, how="NAME..., -t TAG or --all")
    results = check_servers(app.settings, app.engine, chosen, update_host_key=update_host_key,
                            keyring_get=lambda: app.keyring, notify=app.out.note,
                            connect_timeout=connect_timeout)
    code = exit_code_for(results)

    def text(console) -> None:  # noqa: ANN001
        for r in results:
            if r.ok:
                how = {"ok": "host key verified", "pinned": "host key pinned on first contact",
                       "replaced": f"host key replaced (was {r.old_fingerprint})"}[r.status]
                if r.server == "local" and r.address == "this machine":
                    how = "built-in, no SSH"
                key = f"{r.host_key_type} {r.fingerprint}" if r.fingerprint else ""
                ms = f"{r.connect_ms:.0f} ms" if r.connect_ms is not None else ""
                console.print(f"{r.server}: ok  {r.address}  {key}  {ms}  ({how})".replace("    ", "  "),
                              markup=False)
            else:
                app.out.err.print(f"error: {r.error}", markup=False)

    errs = [{"code": r.error_code or r.status, "message": r.error or r.status} for r in results if not r.ok]
    return app.out.emit({"servers": results}, text, exit_code=code, errors=errs)
