"""Shell completion: what Tab offers after `-s`, `-t`, `ssh`, `cp`, `servers show` …, and
`vpsagent completion bash|zsh|fish`, which prints the script to install.

Which parameter completes what is one table (`COMPLETERS`), attached to the commands as
they are loaded (cli.LazyGroup), rather than a `shell_complete=` on each of twenty
declarations. Names come from db/lookup.py, which never imports SQLAlchemy: a Tab must
answer in well under 150 ms (bench/completion.py).
"""

from __future__ import annotations

from collections.abc import Callable

import click
from click.shell_completion import CompletionItem

Completer = Callable[[click.Context, click.Parameter, str], list[CompletionItem]]
SHELLS = ("bash", "zsh", "fish")


def _database_url() -> str | None:
    try:
        from vpsagent.settings import load_settings

        return load_settings().database_url
    except Exception:  # noqa: BLE001 - a broken config offers no names, it does not fail a Tab
        return None


def _matching(values: list[str], incomplete: str, *, suffix: str = "") -> list[CompletionItem]:
    return [CompletionItem(v + suffix) for v in values if v.startswith(incomplete)]


def servers(_ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    from vpsagent.db.lookup import server_names

    url = _database_url()
    return _matching(server_names(url) if url else ["local"], incomplete)


def remote_servers(_ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Servers that have SSH (not `local`)."""
    return [c for c in servers(_ctx, _param, incomplete) if c.value != "local"]


def tags(_ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    from vpsagent.db.lookup import tags as all_tags

    url = _database_url()
    return _matching(all_tags(url), incomplete) if url else []


def endpoints(_ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """`cp`: `NAME:` for the servers that match, and local files; remote paths are not
    listed (that would need a connection on every Tab)."""
    if ":" in incomplete.split("/", 1)[0]:
        return []
    names = [c.value for c in remote_servers(_ctx, _param, incomplete)]
    if not names:
        return [CompletionItem(incomplete, type="file")]  # the shell's own file completion
    # bash's script drops every other item when one is of type "file": list local paths
    # ourselves beside the servers
    import glob
    import os

    local = sorted(glob.glob(os.path.expanduser(incomplete) + "*"))[:200]
    return [CompletionItem(f"{n}:", help="a path on this server") for n in names] + [
        CompletionItem(p + ("/" if os.path.isdir(p) else "")) for p in local]


def plan_files(_ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    return [CompletionItem(incomplete, type="file")]


def conversations(_ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    from vpsagent.db.lookup import conversations as listed

    url = _database_url()
    return [CompletionItem(i, help=title[:60] or None) for i, title in (listed(url) if url else [])
            if i.startswith(incomplete)]


# (command path, parameter name) -> what it completes; "*" is any command.
COMPLETERS: dict[tuple[str, str], Completer] = {
    ("*", "servers"): servers,  # -s/--server of run, test run, ask, chat, support, deploy …
    ("*", "server"): servers,  # history -s, safety check -s
    ("*", "tags"): tags,  # -t/--tag
    ("servers list", "tag"): tags,
    ("servers edit", "untag"): tags,
    ("servers show", "name"): servers,
    ("servers edit", "name"): remote_servers,
    ("servers remove", "name"): remote_servers,
    ("servers check", "names"): servers,
    ("servers add", "jump"): remote_servers,
    ("servers edit", "jump"): remote_servers,
    ("ssh", "name"): remote_servers,
    ("cp", "source"): endpoints,
    ("cp", "destination"): endpoints,
    ("test run", "plans"): plan_files,
    ("test validate", "plans"): plan_files,
    ("conversations show", "conversation_id"): conversations,
    ("conversations export", "conversation_id"): conversations,
    ("ask", "conversation_id"): conversations,
    ("chat", "conversation_id"): conversations,
}


def attach(command: click.Command, path: str) -> None:
    """Give `command` (and its subcommands) the completers of the table."""
    for param in command.params:
        fn = COMPLETERS.get((path, param.name or "")) or COMPLETERS.get(("*", param.name or ""))
        if fn is not None:
            param._custom_shell_complete = fn  # click's own slot for `shell_complete=`
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            attach(sub, f"{path} {name}")


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the completion script for SHELL (bash, zsh or fish).

    \b
    Install it once:
      bash:  vpsagent completion bash > ~/.local/share/bash-completion/completions/vpsagent
      zsh:   vpsagent completion zsh > "${fpath[1]}/_vpsagent"   # then start a new shell
      fish:  vpsagent completion fish > ~/.config/fish/completions/vpsagent.fish

    Server names, tags, plan files and conversation ids complete after the options that
    take them (-s, -t, ssh, cp, servers show …).
    """
    from vpsagent.cli.gendocs import SHELLS as FILES
    from vpsagent.cli.gendocs import completion_scripts

    click.echo(completion_scripts()[FILES[shell]], nl=False)
