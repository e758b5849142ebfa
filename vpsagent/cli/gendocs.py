"""Generate shell completions and man pages from the click tree.

    python -m vpsagent.cli.gendocs [ROOT]      # writes ROOT/completions and ROOT/man

The test suite regenerates both into a temporary directory and fails when the
checked-in copies differ, so they never go stale.
"""

from __future__ import annotations

import datetime as _dt
import sys
from pathlib import Path

import click

SHELLS = {"bash": "vpsagent.bash", "zsh": "_vpsagent", "fish": "vpsagent.fish"}


def completion_scripts() -> dict[str, str]:
    from click.shell_completion import get_completion_class

    from vpsagent.cli import cli

    out = {}
    for shell, filename in SHELLS.items():
        cls = get_completion_class(shell)
        assert cls is not None
        out[filename] = cls(cli, {}, "vpsagent", "_VPSAGENT_COMPLETE").source()
    return out


# Characters groff reads the same on every device (man -Tascii too), so it never warns
# about the help text's UTF-8; anything else becomes groff's \[uXXXX] notation.
_GLYPHS = {"·": ";", "…": "...", "—": "\\(em", "→": "\\(->"}


def _glyphs(line: str) -> str:
    line = line.replace(" ·", "·")  # `0 ok · 1 failure` reads `0 ok; 1 failure`
    for char, glyph in _GLYPHS.items():
        line = line.replace(char, glyph)
    return "".join(c if ord(c) < 128 else f"\\[u{ord(c):04X}]" for c in line)


def _esc(text: str) -> str:
    lines = []
    for line in text.replace("\\", "\\e").replace("\b", "").splitlines():
        if line.startswith((".", "'")):
            line = "\\&" + line
        lines.append(_glyphs(line.replace("-", "\\-")))
    return "\n".join(lines)


def _help_paragraphs(text: str) -> str:
    """click help text -> man: blank lines start paragraphs; \\b blocks stay verbatim."""
    import inspect

    out: list[str] = []
    for block in inspect.cleandoc(text).split("\n\n"):
        if block.startswith("\b"):
            out.append(".nf\n" + _esc(block.lstrip("\b\n")) + "\n.fi")
        else:
            out.append(".PP\n" + _esc(" ".join(line.strip() for line in block.splitlines())))
    return "\n".join(out)


def _options(cmd: click.Command, ctx: click.Context) -> list[str]:
    lines = []
    for p in cmd.get_params(ctx):
        rec = p.get_help_record(ctx)
        if rec is None:
            continue
        lines += [".TP", f"\\fB{_esc(rec[0])}\\fR", _esc(rec[1]) or "."]
    return lines


def _walk(cmd: click.Command, ctx: click.Context, lines: list[str]) -> None:
    """Document `cmd` and, for groups, every subcommand below it."""
    if isinstance(cmd, click.Group):
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            sub_ctx = click.Context(sub, info_name=name, parent=ctx)
            lines += [".SS " + _esc(sub_ctx.command_path), _esc(" ".join(sub.collect_usage_pieces(sub_ctx)))]
            lines.append(_help_paragraphs(sub.help or ""))
            lines += _options(sub, sub_ctx)
            _walk(sub, sub_ctx, lines)


EXIT_STATUS = [
    ("0", "success"), ("1", "failure: a test failed, a remote command failed"),
    ("2", "usage or bad input: bad flag, invalid plan, unknown server"),
    ("3", "not logged in / not allowed"), ("4", "needs approval that was not given (non-interactive)"),
    ("5", "server unreachable, SSH authentication failed, host key mismatch"),
    ("6", "AI service error (after retries)"), ("7", "credential integrity: wrong secret, tampered record"),
    ("8", "budget exceeded (turns, tokens, cost)"),
    ("75", "busy: another deploy holds the lock (try again later)"), ("130", "interrupted"),
    ("141", "the reader of the output went away (vpsagent ... | head), as for any program killed by SIGPIPE"),
]
ENVIRONMENT = [
    ("VPSAGENT_HOME", "moves every path (config, data, key file) at once"),
    ("DATABASE_URL", "sqlite:///... (default) or postgresql://..."),
    ("VPSAGENT_SECRET", "master secret for stored credentials (SESSION_SECRET is accepted too)"),
    ("ANTHROPIC_API_KEY", "API key for ask, chat and test generate"),
    ("ANTHROPIC_BASE_URL", "another Messages API endpoint (proxies, tests)"),
    ("VPSAGENT_MODEL", "the Claude model"),
    ("VPSAGENT_SMTP_URL, VPSAGENT_MAIL_FROM", "mail for login codes"),
    ("GITHUB_TOKEN, GITHUB_API_URL", "GitHub access"),
    ("NO_COLOR", "plain output"),
    ("VPSAGENT_TRACEBACK", "show Python tracebacks for internal errors"),
]


def man_pages() -> dict[str, str]:
    from vpsagent import __version__
    from vpsagent.cli import cli

    # a fixed date keeps the pages reproducible; the version says which release they describe
    date = _dt.date(2026, 11, 1).isoformat()
    # the group's context_settings (help_option_names: -h, --help) apply as when it runs;
    # click caches each command's help option, so the pages must not depend on who built it first
    root_ctx = click.Context(cli, info_name="vpsagent", **cli.context_settings)
    pages: dict[str, str] = {}
    names = [None] + [n for n in cli.list_commands(root_ctx)]
    for name in names:
        cmd = cli if name is None else cli.get_command(root_ctx, name)
        assert cmd is not None
        ctx = root_ctx if name is None else click.Context(cmd, info_name=name, parent=root_ctx)
        title = "vpsagent" if name is None else f"vpsagent-{name}"
        short = (cmd.get_short_help_str(200) if name else "ask, test and audit your servers")
        lines = [f'.TH "{title.upper()}" "1" "{date}" "vpsagent {__version__}" "vpsagent manual"',
                 ".SH NAME", f"{_esc(title)} \\- {_esc(short)}",
                 ".SH SYNOPSIS", f"\\fB{_esc(ctx.command_path)}\\fR " + _esc(" ".join(cmd.collect_usage_pieces(ctx))),
                 ".SH DESCRIPTION", _help_paragraphs(cmd.help or "")]
        opts = _options(cmd, ctx)
        if opts:
            lines += [".SH OPTIONS"] + opts
        if isinstance(cmd, click.Group):
            lines.append(".SH COMMANDS")
            if name is None:
                for sub_name in cmd.list_commands(ctx):
                    sub = cmd.get_command(ctx, sub_name)
                    if sub is not None and not sub.hidden:
                        lines += [".TP", f"\\fBvpsagent {sub_name}\\fR", _esc(sub.get_short_help_str(200)),
                                  f"See \\fBvpsagent\\-{sub_name}\\fR(1)."]
            else:
                _walk(cmd, ctx, lines)
        lines.append(".SH EXIT STATUS")
        for code, meaning in EXIT_STATUS:
            lines += [".TP", f"\\fB{code}\\fR", _esc(meaning)]
        if name is None:
            lines.append(".SH ENVIRONMENT")
            for var, meaning in ENVIRONMENT:
                lines += [".TP", f"\\fB{_esc(var)}\\fR", _esc(meaning)]
        pages[f"{title}.1"] = "\n".join(lines) + "\n"
    return pages


def generate(root: Path) -> list[Path]:
    written = []
    for sub, files in (("completions", completion_scripts()), ("man", man_pages())):
        d = root / sub
        d.mkdir(parents=True, exist_ok=True)
        for old in d.iterdir():
            if old.is_file() and old.name not in files:
                old.unlink()
        for name, text in files.items():
            (d / name).write_text(text)
            written.append(d / name)
    return written


if __name__ == "__main__":
    for p in generate(Path(sys.argv[1] if len(sys.argv) > 1 else ".")):
        print(p)
