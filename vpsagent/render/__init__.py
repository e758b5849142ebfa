"""The one renderer: results become rich text for people or the JSON envelope for programs.

stdout carries data only; progress, warnings and tool activity go to stderr. With
`--json`, stdout is exactly one JSON document, also on error:

    {"vpsagent": 1, "command": "...", "ok": bool, "exit_code": int, "data": {...}, "errors": [...]}
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import IO, TYPE_CHECKING, TypedDict, TypeGuard

from vpsagent.errors import ExitCode, VpsAgentError
from vpsagent.jsondata import JSONObject, to_jsonable

__all__ = ["Output", "envelope", "table", "key_values", "to_jsonable"]

if TYPE_CHECKING:
    from typing import Unpack

    from rich.console import Console, JustifyMethod, OverflowMethod
    from rich.style import Style
    from rich.table import Table


class PrintOptions(TypedDict, total=False):
    """rich `Console.print` options beyond markup, style and end, passed through as given."""

    highlight: bool | None
    soft_wrap: bool | None
    crop: bool
    overflow: OverflowMethod | None
    justify: JustifyMethod | None
    no_wrap: bool | None
    width: int | None


def _all_str(objects: tuple[object, ...]) -> TypeGuard[tuple[str, ...]]:
    return all(isinstance(o, str) for o in objects)


def _plain() -> bool:
    return bool(os.environ.get("NO_COLOR")) or os.environ.get("TERM") == "dumb"


def _rich_console(stream: IO[str], tty: bool, plain: bool) -> Console:
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            # rich exits with status 1 here; we want the caller's BrokenPipeError path
            # (quiet, exit 141, remote commands stopped) whichever writer noticed first.
            self.quiet = True
            raise BrokenPipeError

    return _Console(
        file=stream,
        no_color=plain,
        color_system=None if plain else "auto",
        force_terminal=False if plain else None,
        highlight=False,
        soft_wrap=True,  # never fold data lines; pipes and scripts get them whole
        # Off a terminal rich would assume 80 columns and fold table rows, breaking grep
        # and awk; a pipe has no width, so give tables all the room they need.
        width=None if tty else 100_000,
        emoji=False,
    )


class LazyConsole:
    """A rich Console made only when something needs rich (a table, markup, colour).

    Plain lines off a terminal are written directly: `vpsagent run` in a pipeline or
    cron then never imports rich, which is a measurable part of a short command's time.
    """

    def __init__(self, stream: IO[str]):
        self.file = stream
        self.is_terminal = stream.isatty()
        self.plain = _plain() or not self.is_terminal
        self._console: Console | None = None

    def rich(self) -> Console:
        if self._console is None:
            self._console = _rich_console(self.file, self.is_terminal, self.plain)
        return self._console

    def print(self, *objects: object, markup: bool | None = None, style: str | Style | None = None,
              end: str = "\n", **kw: Unpack[PrintOptions]) -> None:
        if self.plain and markup is False and not kw and _all_str(objects):
            self.file.write(" ".join(objects) + end)
            self.file.flush()
            return
        self.rich().print(*objects, markup=markup, style=style, end=end, **kw)

    def __getattr__(self, name: str) -> object:
        # anything else a rich Console has (typed code calls `.rich()` for it)
        return getattr(self.rich(), name)


# What `Output.emit` shows people: a function that writes to the console, a line, or nothing.
TextRenderer = Callable[[LazyConsole], None] | str | None


def make_console(file: IO[str] | None = None, *, stderr: bool = False) -> LazyConsole:
    return LazyConsole(file or (sys.stderr if stderr else sys.stdout))


def envelope(command: str, *, ok: bool, exit_code: int, data: object = None,
             errors: Sequence[dict[str, str]] = ()) -> JSONObject:
    return {
        "vpsagent": 1,
        "command": command,
        "ok": ok,
        "exit_code": int(exit_code),
        "data": to_jsonable(data) if data is not None else {},
        "errors": list(errors),
    }


def error_entry(exc: VpsAgentError) -> dict[str, str]:
    entry = {"code": exc.code, "message": exc.message}
    if exc.hint:
        entry["hint"] = exc.hint
    return entry


class Output:
    """Where a command's result goes. One per invocation, built by the CLI."""

    def __init__(self, *, json_mode: bool, command: str,
                 stdout: IO[str] | None = None, stderr: IO[str] | None = None):
        self.json_mode = json_mode
        self.command = command
        self._stdout = stdout
        self.out = make_console(stdout)
        self.err = make_console(stderr, stderr=True)
        self.emitted = False

    # -- results -------------------------------------------------------------------
    def emit(self, data: object, text: TextRenderer = None, *, exit_code: int = ExitCode.OK,
             errors: Sequence[dict[str, str]] = ()) -> int:
        """Write the command's result; returns `exit_code` so a command can `return out.emit(...)`."""
        self.emitted = True
        if self.json_mode:
            doc = envelope(self.command, ok=exit_code == 0, exit_code=exit_code, data=data, errors=errors)
            self.write_json(doc)
        elif callable(text):
            text(self.out)
        elif text is not None:
            self.out.print(text, markup=False)
        return int(exit_code)

    def emit_list(self, key: str, items: Iterable[object]) -> int:
        """--json for a long listing: the envelope with `data: {key: [...], "count": N}`,
        written item by item as `items` yields them, so memory stays flat however many
        there are (`history --json` of the whole audit log)."""
        self.emitted = True
        stream = self._stdout or sys.stdout
        head = envelope(self.command, ok=True, exit_code=ExitCode.OK, data={})
        stream.write("{\n" + "".join(f"  {json.dumps(k)}: {json.dumps(head[k])},\n"
                                      for k in ("vpsagent", "command", "ok", "exit_code")))
        stream.write(f'  "data": {{\n    {json.dumps(key)}: [')
        count = 0
        for item in items:
            body = json.dumps(to_jsonable(item), indent=2, ensure_ascii=False).replace("\n", "\n      ")
            stream.write(("," if count else "") + "\n      " + body)
            count += 1
        stream.write(("\n    " if count else "") + f'],\n    "count": {count}\n  }},\n  "errors": []\n}}\n')
        stream.flush()
        return int(ExitCode.OK)

    def data(self, text: str) -> None:
        """Raw text on stdout, exactly as given (a report, a plan, an exported document)."""
        stream = self._stdout or sys.stdout
        stream.write(text)
        stream.flush()

    def line(self, text: str) -> None:
        """One plain line of data on stdout (no markup, no colour)."""
        self.out.print(text, markup=False)

    def write_json(self, doc: JSONObject) -> None:
        stream = self._stdout or sys.stdout
        stream.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        stream.flush()

    def error(self, exc: VpsAgentError) -> None:
        """A known failure: one line on stderr, or the envelope on stdout with --json."""
        if self.json_mode:
            if not self.emitted:
                self.write_json(envelope(self.command, ok=False, exit_code=exc.exit_code,
                                         data=exc.data, errors=[error_entry(exc)]))
        else:
            self.err.print(f"error: {exc.line()}", markup=False, style="red" if not _plain() else None)

    # -- progress on stderr ----------------------------------------------------------
    def note(self, message: str) -> None:
        """A progress or status line on stderr (suppressed under --json? no: stderr is free)."""
        self.err.print(message, markup=False, style="dim" if not _plain() else None)

    def warn(self, message: str) -> None:
        self.err.print(f"warning: {message}", markup=False, style="yellow" if not _plain() else None)


def table(columns: Sequence[str], rows: Iterable[Sequence[object]], *, title: str | None = None) -> Table:
    from rich.table import Table

    t = Table(title=title, show_edge=False, box=None, pad_edge=False, header_style="bold")
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*["" if v is None else str(v) for v in r])
    return t


def key_values(pairs: Iterable[tuple[str, object]]) -> Table:
    from rich.table import Table

    t = Table(show_header=False, show_edge=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column(overflow="fold")
    for k, v in pairs:
        t.add_row(k, "" if v is None else str(v))
    return t
