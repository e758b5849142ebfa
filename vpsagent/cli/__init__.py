"""The `vpsagent` command: a lazy click group and the one place errors become exit codes."""

from __future__ import annotations

import gc
import importlib
import os
import sys
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import click

from vpsagent import __version__
from vpsagent.cli._common import Invocation

if TYPE_CHECKING:
    from vpsagent.render import Output

# command name -> "module:attribute"; modules are imported only when the command runs
# (or when --help lists them), so `vpsagent --help` never pays for anthropic or fabric.
COMMANDS: dict[str, str] = {
    "servers": "vpsagent.cli.servers:servers",
    "test": "vpsagent.cli.test:test",
    "secret": "vpsagent.cli.admin:secret",
    "db": "vpsagent.cli.admin:db",
    "doctor": "vpsagent.cli.admin:doctor",
    "ask": "vpsagent.cli.ask:ask",
    "chat": "vpsagent.cli.ask:chat",
    "conversations": "vpsagent.cli.ask:conversations",
    "run": "vpsagent.cli.run:run",
    "history": "vpsagent.cli.history:history",
    "login": "vpsagent.cli.auth:login",
    "logout": "vpsagent.cli.auth:logout",
    "whoami": "vpsagent.cli.auth:whoami",
    "tokens": "vpsagent.cli.auth:tokens",
    "users": "vpsagent.cli.auth:users",
    "auth": "vpsagent.cli.auth:auth_group",
    "support": "vpsagent.cli.support:support",
    "safety": "vpsagent.cli.safety:safety",
    "deploy": "vpsagent.cli.deploy:deploy",
    "github": "vpsagent.cli.deploy:github",
    "plan": "vpsagent.cli.plan:plan",
    "apply": "vpsagent.cli.plan:apply",
    "ssh": "vpsagent.cli.shell:ssh",
    "cp": "vpsagent.cli.shell:cp",
    "completion": "vpsagent.cli.complete:completion",
}


class LazyGroup(click.Group):
    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:  # type: ignore[explicit-any]  # click.Group passes these on untyped (`**kwargs: Any`)
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            from vpsagent.cli.complete import attach

            module, attr = self.lazy[cmd_name].split(":")
            command: click.Command = getattr(importlib.import_module(module), attr)
            attach(command, cmd_name)  # what Tab offers for its parameters (cli/complete.py)
            return command
        return super().get_command(ctx, cmd_name)


EXIT_CODES_HELP = """\b
Exit codes: 0 ok · 1 failure · 2 usage/bad input · 3 not allowed ·
4 approval needed · 5 unreachable/SSH/host key · 6 AI service ·
7 credential integrity · 8 budget exceeded · 75 busy (a lock is held) · 130 interrupted"""


@click.group(cls=LazyGroup, lazy=COMMANDS, epilog=EXIT_CODES_HELP,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="vpsagent")
@click.option("--token-file", metavar="PATH", help="Use the API token in PATH (`-` reads it from stdin).")
@click.pass_context
def cli(ctx: click.Context, token_file: str | None) -> None:
    """Ask your servers in plain language, test them in CI, audit every command.

    \b
    Quick start:
      vpsagent servers list
      vpsagent run -s local 'uptime'
      vpsagent servers add web1 --host 203.0.113.10 --user deploy --key ~/.ssh/id_ed25519

    Settings come from flags, then the environment (DATABASE_URL, VPSAGENT_SECRET,
    ANTHROPIC_API_KEY, VPSAGENT_HOME, ...), then the config file; `vpsagent doctor`
    shows what is in use. API tokens for CI and cron: VPSAGENT_TOKEN or --token-file.
    """
    inv = ctx.find_object(Invocation)
    if inv is not None and token_file is not None:
        inv.token_file = token_file


def _json_requested(argv: Sequence[str]) -> bool:
    return "--json" in argv


def _command_from_argv(argv: Sequence[str]) -> str:
    """The command path in `argv` (`servers show`), without its arguments: what the JSON
    envelope names when the command line could not even be parsed."""
    path: list[str] = []
    group: click.Command | None = cli
    skip = False
    for word in argv:
        if skip or word.startswith("-"):
            skip = word == "--token-file"  # the one top-level option that takes a value
            continue
        ctx = click.Context(group, info_name=" ".join(["vpsagent", *path])) if group is not None else None
        sub = group.get_command(ctx, word) if isinstance(group, click.Group) and ctx is not None else None
        if sub is None:
            break
        path.append(word)
        group = sub
    return " ".join(path) or "vpsagent"


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point: run the command, translate every outcome into one exit code, exit."""
    code = _flush_output(execute(argv))
    if "vpsagent.db.engine" in sys.modules:
        try:
            sys.modules["vpsagent.db.engine"].dispose_engines()
        except Exception:  # noqa: BLE001 - the process ends either way
            pass
    # A normal exit, so atexit handlers run. Results are committed and connections closed;
    # what is left is the interpreter's teardown, whose final garbage collection over
    # everything SQLAlchemy, pydantic and paramiko allocated costs ~90 ms on a short
    # command. Frozen objects sit in the permanent generation, which it does not scan
    # (teardown then takes ~12 ms; os._exit, which skipped atexit, took ~5 ms).
    gc.disable()
    gc.freeze()
    sys.exit(code)


def _flush_output(code: int) -> int:
    """Flush stdout and stderr; output that could not be written changes the exit code.

    A stream whose reader went away (141) or whose writes fail is pointed at /dev/null,
    so the interpreter's own flush at exit neither complains nor turns the code into 120.
    """
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        code = code or 141
    except OSError as exc:  # e.g. /dev/full: the data never arrived, so this did not succeed
        try:
            sys.stderr.write(f"error: cannot write output: {exc.strerror}\n")
        except OSError:
            pass
        code = code or 1
        _to_devnull(1)
    except ValueError:
        pass
    if code == 141:
        _to_devnull(1)
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        _to_devnull(2)
    return code


def _to_devnull(fd: int) -> None:
    """Whatever is still buffered for `fd` (1 or 2) goes nowhere instead of failing at exit."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, fd)
        os.close(null)
    except OSError:
        pass

class _Report:
    """How `execute` reports a failure: through the command's Output once it has one, else a
    new one (rich is imported only when something must be shown, so --help stays fast)."""

    def __init__(self, inv: Invocation, args: list[str]) -> None:
        self.inv = inv
        self.args = args

    def output(self) -> Output:
        from vpsagent.render import Output

        return self.inv.out or Output(json_mode=_json_requested(self.args), command=_command_from_argv(self.args))

    def write_error(self, out: Output, command: str, *, exit_code: int, code: str, message: str) -> None:
        """The JSON envelope of a failed command, with one error entry."""
        from vpsagent.render import envelope

        out.write_json(envelope(command, ok=False, exit_code=exit_code,
                                errors=[{"code": code, "message": message}]))


def _usage_error(exc: click.ClickException, rep: _Report) -> int:
    """Bad flags or arguments: click's message, or the envelope with --json."""
    from vpsagent.errors import ExitCode

    out = rep.output()
    # a parse error in a subcommand happens before its --json is seen; argv still says
    if out.json_mode or _json_requested(rep.args):
        command = out.command if out.json_mode else _command_from_argv(rep.args)
        rep.write_error(out, command, exit_code=exc.exit_code, code="usage", message=exc.format_message())
    else:
        _show_usage_error(exc, out)
    return int(exc.exit_code) if exc.exit_code else int(ExitCode.USAGE)


def _show_usage_error(exc: click.ClickException, out: Output) -> None:
    """click's complaint in our style: `error: ...` first, then how the command is used."""
    from vpsagent.errors import UsageError

    message = exc.format_message().rstrip(".")
    out.error(UsageError(message[:1].lower() + message[1:]))
    ctx = getattr(exc, "ctx", None)
    if isinstance(ctx, click.Context):
        path = ctx.command_path
        out.err.print(f"usage: {path} {' '.join(ctx.command.collect_usage_pieces(ctx))}".rstrip(), markup=False)
        out.err.print(f"see `{path} --help`", markup=False)


def _interrupted(rep: _Report) -> int:
    """Ctrl-C (or click's Abort): one word, or the envelope unless the result was out already."""
    from vpsagent.errors import ExitCode

    out = rep.output()
    if out.json_mode:
        if not out.emitted:
            rep.write_error(out, out.command, exit_code=ExitCode.INTERRUPTED, code="interrupted",
                            message="interrupted")
    else:
        out.err.print("interrupted", markup=False)
    return int(ExitCode.INTERRUPTED)


def _reader_gone() -> int:
    """The reader went away (`vpsagent ... | head`): leave quietly, like a Unix tool."""
    try:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
    except OSError:
        pass
    return 141


def _unwritable_output(exc: OSError, rep: _Report) -> int:
    """The output itself cannot be written (a full disk, /dev/full, a closed descriptor);
    any other OSError is a bug."""
    import errno

    from vpsagent.errors import ExitCode

    if exc.errno not in (errno.ENOSPC, errno.EIO, errno.EBADF, errno.EDQUOT):
        return _internal_error(exc, rep)
    try:
        sys.stderr.write(f"error: cannot write output: {exc.strerror}\n")
    except OSError:
        pass
    return int(ExitCode.FAILURE)


def _internal_error(exc: Exception, rep: _Report) -> int:
    """A bug: one line that says so (the trace with VPSAGENT_TRACEBACK=1)."""
    from vpsagent.errors import ExitCode

    if os.environ.get("VPSAGENT_TRACEBACK"):
        raise exc
    out = rep.output()
    message = f"internal error: {type(exc).__name__}: {exc}"
    if out.json_mode and not out.emitted:
        rep.write_error(out, out.command, exit_code=ExitCode.FAILURE, code="internal", message=message)
    else:
        out.err.print(f"error: {message} (a bug: rerun with VPSAGENT_TRACEBACK=1 and report it)", markup=False)
    return int(ExitCode.FAILURE)


def _stdout_wrapped_by_click() -> bool:
    """click turns a BrokenPipeError into sys.exit(1) after wrapping the streams in its
    PacifyFlushWrapper (spelt `_PacifyFlushWrapper` since click 8.2)."""
    kind = type(sys.stdout)
    return kind.__module__ == "click.utils" and kind.__name__.lstrip("_") == "PacifyFlushWrapper"


def _run_cleanup(inv: Invocation) -> None:
    for fn in reversed(inv.cleanup):
        try:
            fn()
        except Exception:  # noqa: BLE001 - cleanup must not hide the real outcome
            pass


def execute(argv: Sequence[str] | None = None) -> int:
    """Run one command line; returns its exit code (never raises, never exits).

    Each kind of failure has its helper above; the order of the handlers matters
    (BrokenPipeError before OSError, everything known before the catch-all bug).
    """
    from vpsagent.errors import VpsAgentError

    args = list(sys.argv[1:] if argv is None else argv)
    inv = Invocation()
    rep = _Report(inv, args)
    # Started with stdout or stderr closed (`vpsagent ... >&-`): write into the void
    # rather than crash on the first print.
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115
    try:
        with warnings.catch_warnings():
            if not sys.warnoptions:
                # A library's warning (a deprecated key type, an SDK notice) is not for the person
                # at the command line: what matters is said in our own words, on one line.
                # `python -W ...` or PYTHONWARNINGS still shows them.
                warnings.simplefilter("ignore")
            rv = cli.main(args=args, prog_name="vpsagent", standalone_mode=False, obj=inv)
        return int(rv) if isinstance(rv, int) else 0
    except VpsAgentError as exc:
        rep.output().error(exc)
        return int(exc.exit_code)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        return _usage_error(exc, rep)
    except (KeyboardInterrupt, click.exceptions.Abort):
        return _interrupted(rep)
    except SystemExit:
        # for us a reader that went away is the quiet 141, like any Unix tool
        if _stdout_wrapped_by_click():
            return 141
        raise
    except BrokenPipeError:
        return _reader_gone()
    except OSError as exc:
        return _unwritable_output(exc, rep)
    except Exception as exc:
        return _internal_error(exc, rep)
    finally:
        _run_cleanup(inv)
