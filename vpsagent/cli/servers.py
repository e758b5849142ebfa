"""`vpsagent servers`: the inventory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from vpsagent.cli._common import App, Duration, P, R, pass_app, read_stdin_secret

if TYPE_CHECKING:
    from vpsagent.db.inventory import ServerRecord
    from vpsagent.render import LazyConsole
    from vpsagent.secret import Secret


@click.group()
def servers() -> None:
    """The server inventory: names, addresses, credentials (stored encrypted), tags, host keys.

    \b
    Example:
      vpsagent servers add web1 --host 203.0.113.10 --user deploy --key ~/.ssh/id_ed25519 -t web
      vpsagent servers list -t web
    """


def _refuse_password_flag(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        raise click.UsageError(
            "--password on the command line would land in shell history and `ps`; "
            "pipe it instead: printf %s \"$PW\" | vpsagent servers add ... --password-stdin"
        )


def _credential_options(f: Callable[P, R]) -> Callable[P, R]:
    opts = [
        click.option("--host", help="Hostname or IP address."),
        click.option("--port", type=int, help="SSH port (default 22)."),
        click.option("--user", "-u", help="Login user (default: ssh's default)."),
        click.option("--key", "key", type=click.Path(path_type=Path, dir_okay=False),
                     help="Private key file; its contents are stored encrypted (the file may be deleted afterwards)."),
        click.option("--key-passphrase-stdin", is_flag=True, help="Read the key's passphrase from stdin."),
        click.option("--password-stdin", is_flag=True, help="Read the SSH password from stdin."),
        click.option("--password", expose_value=False, callback=_refuse_password_flag, hidden=True),
        click.option("--agent", is_flag=True, help="Authenticate with ssh-agent only."),
        click.option("--jump", help="Name of a server to jump through (ProxyJump)."),
        click.option("--sudo-password-stdin", is_flag=True, help="Read the sudo password from stdin."),
        click.option("--host-key", help="Pin this host key now instead of on first contact: a line like "
                     "'ssh-ed25519 AAAA...' (from ssh-keyscan or the server's /etc/ssh/ssh_host_*.pub)."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _secrets_from_stdin(key_passphrase_stdin: bool, password_stdin: bool,
                        sudo_password_stdin: bool) -> tuple[Secret | None, Secret | None, Secret | None]:
    """Each requested secret is one line of stdin, in the order passphrase, password, sudo password."""
    from vpsagent.errors import UsageError
    from vpsagent.secret import Secret

    if sum([key_passphrase_stdin, password_stdin, sudo_password_stdin]) > 1:
        import sys

        if sys.stdin is None or sys.stdin.isatty():
            raise UsageError("secrets must be piped on stdin, one per line")
    pp = Secret(read_stdin_secret("--key-passphrase-stdin")) if key_passphrase_stdin else None
    pw = Secret(read_stdin_secret("--password-stdin")) if password_stdin else None
    sudo = Secret(read_stdin_secret("--sudo-password-stdin")) if sudo_password_stdin else None
    return pp, pw, sudo


def _show_view(app: App, view: ServerRecord, verb: str) -> int:
    return app.out.emit({"server": view}, text=lambda c: c.print(f"{verb} {view.name} ({_target(view)})",
                                                                  markup=False))


def _target(v: ServerRecord) -> str:
    if v.builtin:
        return "this machine"
    user = f"{v.user}@" if v.user else ""
    port = f":{v.port}" if v.port and v.port != 22 else ""
    return f"{user}{v.host}{port}"


@servers.command("add")
@click.argument("name")
@_credential_options
@click.option("--tag", "-t", "tags", multiple=True, help="Tag (repeatable), e.g. -t web -t prod.")
@pass_app
def servers_add(app: App, name: str, host: str | None, port: int | None, user: str | None, key: Path | None,
                key_passphrase_stdin: bool, password_stdin: bool, agent: bool, jump: str | None,
                sudo_password_stdin: bool, host_key: str | None, tags: tuple[str, ...]) -> int:
    """Add a server to the inventory.

    Passwords and passphrases are read from stdin only, never from the command line.

    \b
    Examples:
      vpsagent servers add web1 --host 203.0.113.10 -u deploy --key ~/.ssh/id_ed25519 -t web
      printf %s "$PW" | vpsagent servers add db1 --host 10.0.0.5 -u admin --password-stdin
      vpsagent servers add ci1 --host 203.0.113.20 --key key --host-key "$KNOWN_HOST_KEY"
    """
    from vpsagent.errors import UsageError
    from vpsagent.services.servers import ServerSpec, add_server

    if host is None:
        raise UsageError("--host is required")
    pp, pw, sudo = _secrets_from_stdin(key_passphrase_stdin, password_stdin, sudo_password_stdin)
    spec = ServerSpec(name=name, host=host, port=port, user=user, key_path=key, key_passphrase=pp,
                      password=pw, agent=agent, tags=list(tags), jump=jump, sudo_password=sudo, host_key=host_key)
    view = add_server(app.ctx, spec)
    return _show_view(app, view, "added")


@servers.command("edit")
@click.argument("name")
@_credential_options
@click.option("--rename", help="New name.")
@click.option("--tag", "-t", "tags", multiple=True, help="Add a tag (repeatable).")
@click.option("--untag", multiple=True, help="Remove a tag (repeatable).")
@click.option("--no-jump", is_flag=True, help="Stop using a jump host.")
@pass_app
def servers_edit(app: App, name: str, host: str | None, port: int | None, user: str | None, key: Path | None,
                 key_passphrase_stdin: bool, password_stdin: bool, agent: bool, jump: str | None,
                 sudo_password_stdin: bool, host_key: str | None, rename: str | None, tags: tuple[str, ...],
                 untag: tuple[str, ...], no_jump: bool) -> int:
    """Change a server; only the options given change.

    \b
    Example:
      vpsagent servers edit web1 --port 2222 -t prod --untag staging
    """
    from vpsagent.errors import UsageError
    from vpsagent.services.servers import ServerSpec, edit_server

    if jump and no_jump:
        raise UsageError("--jump and --no-jump contradict each other")
    pp, pw, sudo = _secrets_from_stdin(key_passphrase_stdin, password_stdin, sudo_password_stdin)
    spec = ServerSpec(name=name, host=host, port=port, user=user, key_path=key, key_passphrase=pp,
                      password=pw, agent=agent, add_tags=list(tags), remove_tags=list(untag),
                      jump="" if no_jump else jump, sudo_password=sudo, host_key=host_key)
    view = edit_server(app.ctx, spec, new_name=rename)
    return _show_view(app, view, "updated")


@servers.command("list")
@click.option("--tag", "-t", help="Only servers with this tag.")
@pass_app
def servers_list(app: App, tag: str | None) -> int:
    """List the inventory (the built-in `local` server first).

    \b
    Example:
      vpsagent servers list -t web --json | jq -r '.data.servers[].name'
    """
    from vpsagent.render import short_fingerprint, table
    from vpsagent.services.servers import list_servers

    views = list_servers(app.engine, tag=tag)

    def text(c: LazyConsole) -> None:
        def key(fp: str | None, builtin: bool) -> str:
            if not fp:
                return "-" if builtin else "not pinned"
            return short_fingerprint(fp) if c.is_terminal else fp

        c.print(table(["NAME", "TARGET", "AUTH", "TAGS", "HOST KEY"],
                      [(v.name, _target(v), v.auth, ",".join(v.tags), key(v.host_key_fingerprint, v.builtin))
                       for v in views], flex=("TARGET", "NAME", "TAGS")))

    return app.out.emit({"servers": views}, text=text)


@servers.command("show")
@click.argument("name")
@pass_app
def servers_show(app: App, name: str) -> int:
    """Show one server (never a secret: only which kinds are stored).

    \b
    Example:
      vpsagent servers show web1
    """
    from vpsagent.render import key_values
    from vpsagent.services.servers import show_server

    v = show_server(app.engine, name)
    stored = [k for k, on in (("private key", v.has_key), ("password", v.has_password),
                              ("sudo password", v.has_sudo_password)) if on]
    pairs = [("name", v.name), ("target", _target(v)), ("auth", v.auth), ("tags", ",".join(v.tags) or "-"),
             ("jump", v.jump or "-"), ("stored secrets", ", ".join(stored) or "none"),
             ("key source", v.key_source or "-"),
             ("host key", f"{v.host_key_type} {v.host_key_fingerprint}" if v.host_key_fingerprint else
              ("-" if v.builtin else "not pinned yet (pinned on first connection)"))]
    return app.out.emit({"server": v}, text=lambda c: c.print(key_values(pairs), markup=False))


@servers.command("remove")
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def servers_remove(app: App, name: str, yes: bool) -> int:
    """Remove a server and its stored credentials.

    Asks for confirmation on a terminal; elsewhere --yes is required.

    \b
    Example:
      vpsagent servers remove web1 --yes
    """
    from vpsagent.cli._prompt import can_prompt, confirm
    from vpsagent.errors import ApprovalRequired
    from vpsagent.services.servers import remove_server, show_server

    show_server(app.engine, name)  # unknown name: exit 2 before asking anything
    if not yes and not confirm(app, f"remove server {name!r} and its stored credentials?"):
        if can_prompt(app):  # asked, and the answer was no: nothing to add
            raise ApprovalRequired(f"not removing {name!r}: you answered no")
        raise ApprovalRequired(f"not removing {name!r}", hint="pass --yes to remove without a prompt")
    view = remove_server(app.ctx, name)
    return _show_view(app, view, "removed")


@servers.command("import")
@click.option("--ssh-config", "ssh_config", type=click.Path(path_type=Path), default=Path("~/.ssh/config"),
              show_default=True, help="OpenSSH client config to read.")
@click.option("--host", "pattern", help="Only Host entries matching this glob.")
@pass_app
def servers_import(app: App, ssh_config: Path, pattern: str | None) -> int:
    """Import servers from an OpenSSH config (HostName, Port, User, IdentityFile, ProxyJump).

    `Include` is followed (globs; relative paths are in ~/.ssh), `Match` blocks are
    skipped with a warning, and a `ProxyJump user@host:port` uses the server with that
    address or adds one.

    \b
    Example:
      vpsagent servers import --host 'web*'
    """
    from vpsagent.services.ssh_import import import_ssh_config

    res = import_ssh_config(app.ctx, ssh_config, pattern)

    def text(c: LazyConsole) -> None:
        for v in res.added:
            c.print(f"added {v.name} ({_target(v)})", markup=False)
        for s in res.warnings:
            app.out.warn(f"{s['name']}: {s['reason']}")
        for s in res.skipped:
            app.out.warn(f"{s['name']}: not imported: {s['reason']}")
        if not res.added and not res.skipped:
            app.out.note("no Host entries matched")

    return app.out.emit(res, text=text)


@servers.command(name="check")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("-t", "--tag", "tags", multiple=True, metavar="TAG", help="Every server with this tag.")
@click.option("--all", "all_", is_flag=True, help="Every server in the inventory.")
@click.option("--update-host-key", is_flag=True,
              help="Accept and pin the key the server presents now (after a legitimate reinstall).")
@click.option("--timeout", "connect_timeout", type=Duration(maximum=300), metavar="DURATION",
              help="Connect timeout (default 10s, at most 5m).")
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
    from vpsagent.render.servers import render_check
    from vpsagent.services.fleet import Selection
    from vpsagent.services.probe import check_servers

    results = check_servers(app.ctx, Selection.of(names, tags, all_), update_host_key=update_host_key,
                            connect_timeout=connect_timeout)
    return render_check(app.out, results)
