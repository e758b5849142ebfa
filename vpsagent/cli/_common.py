"""What every command shares: the App handed to it, `--json`, reading secrets from stdin."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

import click

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from vpsagent.render import Output
    from vpsagent.secret import Secret
    from vpsagent.services.context import Context
    from vpsagent.settings import Settings

# The parameters and result of a command function, for the decorators that add options
# to it (click calls the function with every option as a keyword argument).
P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class Invocation:
    """Created by `cli.main` before click runs, so errors can be rendered the same way."""

    out: Output | None = None
    cleanup: list[Callable[[], None]] = field(default_factory=list)
    token_file: str | None = None  # the top-level --token-file


class App:
    """What a command function gets: where its output goes, and the services' Context."""

    def __init__(self, out: Output, *, token_file: str | None = None):
        from vpsagent.services.context import Context

        self.out = out
        self.ctx: Context = Context(notify=out.note, token=_read_token_file(token_file) if token_file else None)

    @property
    def settings(self) -> Settings:
        return self.ctx.settings

    @property
    def engine(self) -> Engine:
        return self.ctx.engine


def command_name(ctx: click.Context) -> str:
    parts = ctx.command_path.split()
    return " ".join(parts[1:]) or parts[0]


def pass_app(f: Callable[Concatenate[App, P], R]) -> Callable[P, R]:
    """Adds `--json` and hands the command an App as its first argument."""

    @click.option("--json", "json_", is_flag=True, help="Print one JSON document (the vpsagent envelope) on stdout.")
    @click.option("--token-file", metavar="PATH", help="Use the API token in PATH (`-`: stdin) instead of a login.")
    @functools.wraps(f)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from vpsagent.render import Output

        json_ = bool(kwargs.pop("json_", False))
        token_file = kwargs.pop("token_file", None)
        assert token_file is None or isinstance(token_file, str)  # click gives the option's value
        ctx = click.get_current_context()
        out = Output(json_mode=json_, command=command_name(ctx))
        inv = ctx.find_object(Invocation)
        # A group's own callback before its subcommand (`history show ID`) is not where the
        # result goes: an error in parsing the subcommand is rendered by its own --json
        if inv is not None and not (isinstance(ctx.command, click.Group) and ctx.invoked_subcommand):
            inv.out = out
        app = App(out, token_file=token_file or (inv.token_file if inv is not None else None))
        from vpsagent.services.auth import authorize

        authorize(app.ctx, command_name(ctx))  # not logged in / not allowed: exit 3, nothing run
        return f(app, *args, **kwargs)

    return wrapper


def _read_token_file(path: str) -> Secret:
    """An API token from a file, or stdin with `-` (never from a flag value: shell history, ps)."""
    from vpsagent.errors import UsageError
    from vpsagent.secret import Secret

    if path == "-":
        return Secret(read_stdin_secret("--token-file -"))
    from vpsagent.errors import InvalidInput
    from vpsagent.userfiles import read_bounded

    try:
        text = read_bounded(Path(path).expanduser(), 64 * 1024, setting=None).decode("utf-8", "replace").strip()
    except OSError as exc:
        raise UsageError(f"--token-file {path}: {exc.strerror}") from None
    except InvalidInput as exc:  # /dev/zero, a FIFO: never read until memory runs out
        raise UsageError(f"--token-file {exc.message}") from None
    if not text:
        raise UsageError(f"--token-file {path} is empty")
    return Secret(text.splitlines()[0].strip())


def read_stdin_secret(what: str) -> str:
    """One line from stdin, for --password-stdin and friends. Never prompts."""
    from vpsagent.errors import UsageError

    if sys.stdin is None or sys.stdin.isatty():
        raise UsageError(f"{what}: pipe it on stdin, e.g. `printf %s \"$PW\" | vpsagent ...`")
    value = sys.stdin.readline().rstrip("\r\n")
    if not value:
        raise UsageError(f"{what}: stdin was empty")
    return value


def selection_options(*, all_: bool = True,
                      all_help: str = "Every server in the inventory.") -> Callable[[Callable[P, R]], Callable[P, R]]:
    """-s NAME, -t TAG (and --all), handed to the command as one `selection` argument."""

    def decorate(f: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(f)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            from vpsagent.services.fleet import Selection

            servers, tags = kwargs.pop("servers", ()), kwargs.pop("tags", ())
            assert isinstance(servers, tuple) and isinstance(tags, tuple)  # click's multiple=True
            all_flag = bool(kwargs.pop("all_flag", False))
            kwargs["selection"] = Selection.of(servers, tags, all_flag)
            return f(*args, **kwargs)

        opts = [
            click.option("-s", "--server", "servers", multiple=True, metavar="NAME",
                         help="A server by name (repeatable)."),
            click.option("-t", "--tag", "tags", multiple=True, metavar="TAG",
                         help="Every server with this tag (repeatable)."),
        ]
        if all_:
            opts.append(click.option("--all", "all_flag", is_flag=True, help=all_help))
        for opt in reversed(opts):
            wrapper = opt(wrapper)
        return wrapper

    return decorate


def quiet_stdout() -> int:
    """The reader of stdout went away (`vpsagent ... | head`): nothing may be written to the
    pipe again; the exit status is the shell's for SIGPIPE."""
    import os

    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - replaces the closed stream for the rest of the process
    return 141


class QuestionGroup(click.Group):
    """A group whose own command takes free arguments: `support list` and `support show ID`
    are subcommands, anything else goes to the group's command (`support -s web1 "why is
    it slow?"`, `deploy acme/shop --ref v2`)."""

    def __init__(self, *args: object, question: click.Command, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]  # click's own keyword arguments
        self.question = question

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and (args[0] in self.commands or args[0] in ("-h", "--help") and len(args) == 1):
            return super().parse_args(ctx, args)
        ctx.meta["question_args"] = list(args)
        return []

    def invoke(self, ctx: click.Context) -> object:
        args = ctx.meta.pop("question_args", None)
        if args is None:
            return super().invoke(ctx)
        sub = self.question.make_context(ctx.info_name, args, parent=ctx.parent)
        with sub:
            return self.question.invoke(sub)

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self.question.format_help(ctx, formatter)
        self.format_commands(ctx, formatter)


# Row ids are 32-bit integer columns on PostgreSQL: anything outside is no row at all, and
# must not reach the database (an overflow there is an internal error, with SQL in it).
MAX_ROW_ID = 2**31 - 1


class RowId(click.ParamType[int]):
    """A stored row's id (`history show ID`, `--conversation ID`): a whole number that may
    name a row; otherwise "no such ..." (exit 2), the same answer as for an id never used."""

    name = "id"

    def __init__(self, what: str, hint: str | None = None) -> None:
        self.what = what
        self.hint = hint

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> int:
        from vpsagent.errors import NotFound

        if isinstance(value, int) and not isinstance(value, bool):
            n = value
        else:
            text = str(value).strip()
            if not text.lstrip("+-").isdigit() or len(text) > 30:
                self.fail(f"{value!r} is not an id (a whole number)", param, ctx)
            n = int(text)
        if not 1 <= n <= MAX_ROW_ID:
            raise NotFound(f"no {self.what} {value}", hint=self.hint)
        return n


class Duration(click.ParamType[float]):
    """A duration flag: `30s`, `2m`, `1h30m`, `500ms` or seconds — finite, above zero and at
    most `maximum` (`inf`, `nan` and negatives are refused before anything runs)."""

    name = "duration"

    def __init__(self, maximum: float) -> None:
        self.maximum = maximum

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> float:
        from vpsagent.durations import seconds

        if isinstance(value, float):
            return value
        # InvalidInput, not click's usage text: one `error: --timeout: ...` line, exit 2
        return seconds(str(value), what=_flag(param, "duration"), maximum=self.maximum)


class FiniteFloat(click.ParamType[float]):
    """A positive, finite number (`--max-cost`): `nan` would mean "no limit", `inf` too."""

    name = "number"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> float:
        import math

        from vpsagent.errors import InvalidInput

        try:
            n = float(value)  # type: ignore[arg-type]  # click hands the option's text (or a float default)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(n) or n <= 0:
            raise InvalidInput(f"{_flag(param, 'number')}: {value!r} must be a finite number above zero")
        return n


def _flag(param: click.Parameter | None, default: str) -> str:
    """How the user spelt the option (`--max-cost`), for an error about its value."""
    opts = getattr(param, "opts", None) or []
    return max(opts, key=len) if opts else default


class Limit(click.IntRange):
    """How many rows to show (`--limit`): at least `min`, and any larger number means "all
    there are" (a number past what the database can compare would be an internal error)."""

    def __init__(self, min: int = 1) -> None:  # noqa: A002 - click.IntRange's own name
        super().__init__(min=min)

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> int:
        n: int = super().convert(value, param, ctx)
        return min(n, MAX_ROW_ID)


def connect_timeout_option(f: Callable[P, R]) -> Callable[P, R]:
    """--connect-timeout DURATION, handed to the command as `connect_timeout` (seconds or None)."""
    return click.option(
        "--connect-timeout", metavar="DURATION", type=Duration(600),
        help="Give up on a server whose TCP connect, SSH handshake or login takes longer "
             "(default 10s, or VPSAGENT_CONNECT_TIMEOUT).")(f)


def lock_options(f: Callable[P, R]) -> Callable[P, R]:
    """--lock and --lock-wait DURATION, handed to the command as `lock` and `lock_wait`."""
    f = click.option("--lock-wait", metavar="DURATION", type=Duration(86400),
                     help="With --lock: wait up to DURATION for a busy lock (implies --lock).")(f)
    return click.option(
        "--lock", is_flag=True,
        help="Take a lock on each server first (in the database): another --lock run on one of "
             "them exits 75 (busy) instead of running at the same time.")(f)
