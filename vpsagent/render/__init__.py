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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, TypedDict, TypeGuard

from vpsagent.errors import ExitCode, VpsAgentError
from vpsagent.jsondata import JSONObject, to_jsonable

__all__ = ["Output", "TextTable", "envelope", "table", "key_values", "to_jsonable", "when", "short_fingerprint"]

if TYPE_CHECKING:
    from typing import Unpack

    from rich.console import Console, JustifyMethod, OverflowMethod
    from rich.style import Style


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
        if len(objects) == 1 and isinstance(objects[0], TextTable):
            self._table(objects[0])
            return
        if self.plain and markup is False and not kw and _all_str(objects):
            self.file.write(" ".join(objects) + end)
            self.file.flush()
            return
        self.rich().print(*objects, markup=markup, style=style, end=end, **kw)

    @property
    def columns(self) -> int:
        """The terminal's width (COLUMNS wins, as for every tool); 80 when it cannot be told."""
        import shutil

        try:
            fallback = os.get_terminal_size(self.file.fileno()).columns
        except (OSError, ValueError, AttributeError):
            fallback = 80
        return shutil.get_terminal_size((fallback, 24)).columns if "COLUMNS" in os.environ else fallback

    def _table(self, t: TextTable) -> None:
        if not self.is_terminal:
            # for grep, cut and awk: one line per row, tab-separated, nothing padded
            for row in [list(t.columns), *t.rows]:
                self.file.write("\t".join(_one_line(c) for c in row) + "\n")
            self.file.flush()
            return
        lines = t.fit(self.columns)
        if self.plain:
            self.file.write("".join(line.rstrip() + "\n" for line, _ in lines))
            self.file.flush()
            return
        from rich.text import Text

        for i, (line, styles) in enumerate(lines):
            text = Text(line.rstrip(), style="bold" if i == 0 else "")
            for start, end, style in styles:
                text.stylize(style, start, end)
            self.rich().print(text, soft_wrap=True)

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


def _one_line(value: str) -> str:
    return value.replace("\t", " ").replace("\r", " ").replace("\n", " ⏎ ")


def _cells(text: str) -> int:
    from rich.cells import cell_len

    return cell_len(text)


def _truncate(text: str, width: int) -> str:
    """`text` in at most `width` cells, the cut marked with an ellipsis."""
    if _cells(text) <= width:
        return text
    from rich.cells import set_cell_size

    return set_cell_size(text, max(width - 1, 0)).rstrip() + "…"


# A narrowed column keeps at least this many cells (its header may be cut, not its meaning).
_MIN_COLUMN = 6
_GAP = 2


@dataclass
class TextTable:
    """Rows for people: on a terminal, aligned and fitted to its width (the widest text
    column is cut with an ellipsis, never folded over lines); off a terminal, one
    tab-separated line per row with nothing padded, so scripts can split it."""

    columns: Sequence[str]
    rows: list[list[str]] = field(default_factory=list)
    # (column, value) -> a rich style for that cell on a colour terminal, or None
    style: Callable[[str, str], str | None] | None = None
    # The text columns cut first (the widest of them first); the others keep their width
    # (times, ids, states) until these are down to a few cells.
    flex: Sequence[str] = ()

    def add_row(self, *cells: object) -> None:
        self.rows.append(["" if v is None else str(v) for v in cells])

    def widths(self, total: int) -> list[int]:
        """Column widths that fit `total` cells: the widest column gives way first."""
        rows = [list(self.columns), *self.rows]
        widths = [max(_cells(_one_line(r[i])) for r in rows) for i in range(len(self.columns))]
        excess = sum(widths) + _GAP * (len(widths) - 1) - total
        flex = [i for i, c in enumerate(self.columns) if c in self.flex]
        while excess > 0:
            room = [i for i in flex if widths[i] > _MIN_COLUMN] or range(len(widths))
            widest = max(room, key=lambda i: widths[i])
            if widths[widest] <= _MIN_COLUMN:
                break  # nothing left to give: let the terminal fold the rest
            cut = min(excess, widths[widest] - _MIN_COLUMN)
            # cut no further than the next widest column, so the cuts are shared
            others = [widths[i] for i in room if i != widest]
            if others and widths[widest] - cut < max(others):
                cut = max(1, widths[widest] - max(max(others), _MIN_COLUMN))
            widths[widest] -= cut
            excess -= cut
        return widths

    def fit(self, total: int) -> list[tuple[str, list[tuple[int, int, str]]]]:
        """The lines (header first), each with the styled spans of its cells."""
        widths = self.widths(total)
        lines = []
        for n, row in enumerate([list(self.columns), *self.rows]):
            parts, spans, pos = [], [], 0
            for i, (cell, w) in enumerate(zip(row, widths, strict=True)):
                shown = _truncate(_one_line(cell), w)
                style = self.style(self.columns[i], cell) if self.style and n else None
                if style:
                    spans.append((pos, pos + len(shown), style))
                pad = w - _cells(shown) if i < len(widths) - 1 else 0
                parts.append(shown + " " * pad)
                pos += len(shown) + pad + _GAP
            lines.append(((" " * _GAP).join(parts), spans))
        return lines


def table(columns: Sequence[str], rows: Iterable[Sequence[object]], *,
          style: Callable[[str, str], str | None] | None = None, flex: Sequence[str] = ()) -> TextTable:
    t = TextTable(columns, style=style, flex=flex)
    for r in rows:
        t.add_row(*r)
    return t


def key_values(pairs: Iterable[tuple[str, object]]) -> str:
    """`key  value` lines, the keys aligned, values whole and nothing padded after them."""
    items = [(k, "" if v is None else str(v)) for k, v in pairs]
    if not items:
        return ""
    width = max(len(k) for k, _ in items)
    return "\n".join(f"{k:<{width}}  {v}".rstrip() for k, v in items)


def when(value: datetime | str | None) -> str:
    """A time as people read it, one format everywhere: local time with its offset, to
    the second (`2026-12-01 15:47:03 +0100`). --json and CSV carry ISO 8601 instead."""
    if value is None or value == "":
        return "-"
    dt = datetime.fromisoformat(value) if isinstance(value, str) else value
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)  # vpsagent stores UTC
    return dt.astimezone().strftime("%Y-%m-%d %H:%M:%S %z")


def short_fingerprint(fp: str) -> str:
    """`SHA256:abcdefgh…`: enough to tell keys apart in a table; `servers show` has it whole."""
    kind, _, digest = fp.partition(":")
    return f"{kind}:{digest[:8]}…" if digest and len(digest) > 8 else fp
