"""What every command shares: the App handed to it, `--json`, reading secrets from stdin."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from vpsagent.crypto import Keyring
    from vpsagent.render import Output
    from vpsagent.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Invocation:
    """Created by `cli.main` before click runs, so errors can be rendered the same way."""

    out: Output | None = None
    cleanup: list[Callable[[], None]] = field(default_factory=list)


class App:
    """Settings, database and keyring, each resolved once, on first use."""

    def __init__(self, out: Output):
        self.out = out
        self._settings: Settings | None = None
        self._engine: Engine | None = None
        self._keyring: Keyring | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from vpsagent.settings import load_settings

            self._settings = load_settings()
        return self._settings

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from vpsagent.db.engine import get_engine

            self._engine = get_engine(self.settings)
        return self._engine

    @property
    def keyring(self) -> Keyring:
        if self._keyring is None:
            from vpsagent.services.vault import get_keyring

            self._keyring = get_keyring(self.settings, self.engine, notify=self.out.note)
        return self._keyring


def command_name(ctx: click.Context) -> str:
    parts = ctx.command_path.split()
    return " ".join(parts[1:]) or parts[0]


def pass_app(f: F) -> F:
    """Adds `--json` and hands the command an App as its first argument."""

    @click.option("--json", "json_", is_flag=True, help="Print one JSON document (the vpsagent envelope) on stdout.")
    @functools.wraps(f)
    def wrapper(*args: Any, json_: bool = False, **kwargs: Any) -> Any:
        from vpsagent.render import Output

        ctx = click.get_current_context()
        out = Output(json_mode=json_, command=command_name(ctx))
        inv = ctx.find_object(Invocation)
        if inv is not None:
            inv.out = out
        return f(App(out), *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def read_stdin_secret(what: str) -> str:
    """One line from stdin, for --password-stdin and friends. Never prompts."""
    from vpsagent.errors import UsageError

    if sys.stdin is None or sys.stdin.isatty():
        raise UsageError(f"{what}: pipe it on stdin, e.g. `printf %s \"$PW\" | vpsagent ...`")
    value = sys.stdin.readline().rstrip("\r\n")
    if not value:
        raise UsageError(f"{what}: stdin was empty")
    return value
