"""`vpsagent run`: one shell command on one server, a group, or all — streamed, audited.

(Not `cli/run.py`: that name would shadow `vpsagent.cli.run`, the entry function.)
"""

from __future__ import annotations

import sys
import threading
from typing import IO, Any

import click

from vpsagent.cli._common import App, pass_app


class _Prefixer:
    """Writes complete lines as `server | line`, keeping each server's partial line apart."""

    def __init__(self, width: int):
        self.width = width
        self.lock = threading.Lock()
        self.partial: dict[tuple[str, str], bytes] = {}
        self.broken = False  # the reader of our stdout went away

    def _stream(self, which: str) -> IO[bytes]:
        return (sys.stdout if which == "stdout" else sys.stderr).buffer

    def write(self, server: str, which: str, chunk: bytes) -> None:
        key = (server, which)
        data = self.partial.pop(key, b"") + chunk
        *lines, rest = data.split(b"\n")
        if rest:
            self.partial[key] = rest
        if lines:
            prefix = f"{server:<{self.width}} | ".encode()
            out = b"".join(prefix + ln + b"\n" for ln in lines)
            with self.lock:
                if self.broken and which == "stdout":
                    raise BrokenPipeError("stdout was closed")
                s = self._stream(which)
                try:
                    s.write(out)
                    s.flush()
                except BrokenPipeError:
                    self.broken = True
                    raise

    def flush(self, server: str) -> None:
        for which in ("stdout", "stderr"):
            rest = self.partial.pop((server, which), b"")
            if rest:
                self.write(server, which, rest + b"\n")


def _raw_writer(server: str, which: str, chunk: bytes) -> None:
    stream = (sys.stdout if which == "stdout" else sys.stderr).buffer
    stream.write(chunk)
    stream.flush()


@click.command(name="run", context_settings={"ignore_unknown_options": False})
@click.argument("command", nargs=-1, required=True)
@click.option("-s", "--server", "servers", multiple=True, metavar="NAME", help="A server by name (repeatable).")
@click.option("-t", "--tag", "tags", multiple=True, metavar="TAG", help="Every server with this tag (repeatable).")
@click.option("--all", "all_", is_flag=True, help="Every server in the inventory (not `local`).")
@click.option("--sudo", is_flag=True, help="Run through sudo (the stored sudo password answers its prompt).")
@click.option("--timeout", type=float, metavar="S", help="Stop the command after S seconds (status timeout).")
@click.option("--forks", type=int, metavar="N", help="Servers at once (default 64).")
@click.option("--serial", type=int, metavar="N", help="Run in batches of N servers, one batch after the other.")
@click.option("--max-fail", type=int, metavar="N", help="Start no new server after N have failed.")
@pass_app
def run(app: App, command: tuple[str, ...], servers: tuple[str, ...], tags: tuple[str, ...], all_: bool,
        sudo: bool, timeout: float | None, forks: int | None, serial: int | None,
        max_fail: int | None) -> int:
    """Run a shell command on servers, without AI. Every run is recorded (`vpsagent history`).

    One server: its stdout and stderr pass through unchanged as they arrive. Several:
    in parallel, each line prefixed with the server name, a summary on stderr.

    \b
    Examples:
      vpsagent run -s web1 'cat /var/log/app.log' | grep ERROR
      vpsagent run -t web --serial 2 --max-fail 1 'systemctl restart app'
      vpsagent run --all --json uptime
      vpsagent run -s db1 --sudo --timeout 30 -- journalctl -u postgresql -n 50

    \b
    Exit status: 0 all succeeded · 1 a command failed or timed out ·
    5 a server was unreachable (or SSH auth / host key failed) · 130 interrupted.
    """
    from vpsagent.remote.hosts import select_servers
    from vpsagent.services.run import run_command

    text = " ".join(command)
    names = select_servers(app.engine, servers, tags, all_)
    many = len(names) > 1
    prefixer = _Prefixer(max(len(n) for n in names)) if many and not app.out.json_mode else None
    on_output: Any = None
    if not app.out.json_mode:
        on_output = prefixer.write if prefixer is not None else _raw_writer

    def server_done(r: Any) -> None:
        if prefixer is not None:
            if prefixer.broken:
                return  # the reader left: nothing more to say
            try:
                prefixer.flush(r.server)
            except BrokenPipeError:
                return
        if not app.out.json_mode and many and r.status != "ok":
            app.out.err.print(f"{r.server}: {_status_line(r)}", markup=False)

    try:
        outcome = run_command(
            app.settings, app.engine, text, names=servers, tags=tags, all_=all_, sudo=sudo, timeout=timeout,
            forks=forks, serial=serial, max_fail=max_fail, keyring_get=lambda: app.keyring,
            notify=app.out.note, on_output=on_output, on_server_done=server_done,
            keep_output=app.out.json_mode,
        )
    except BrokenPipeError:
        # `vpsagent run ... | head`: the reader left, the remote command was stopped and its
        # row marked; leave quietly with the shell's SIGPIPE status, as `cli.run` does.
        import os

        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - nothing may be written to the pipe again
        return 141
    if prefixer is not None and prefixer.broken:
        import os

        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the reader left (`| head`)
        return 141
    data = {"command": outcome.command, "summary": outcome.counts(), "interrupted": outcome.interrupted,
            "servers": outcome.servers}
    errs = [{"code": r.error_code or r.status, "message": f"{r.server}: {r.error}"}
            for r in outcome.servers if r.status != "ok" and r.error]
    if app.out.json_mode:
        return app.out.emit(data, exit_code=outcome.exit_code, errors=errs)
    err = app.out.err
    if many:
        counts = outcome.counts()
        parts = [f"{counts[k]} {k}" for k in ("ok", "failed", "timeout", "unreachable", "connection_lost",
                                               "error", "interrupted", "skipped") if counts.get(k)]
        for r in outcome.servers:
            if r.status == "skipped":
                err.print(f"{r.server}: {r.error}", markup=False)
        err.print(f"{len(outcome.servers)} servers: " + ", ".join(parts), markup=False)
    else:
        r = outcome.servers[0]
        if r.status in ("unreachable", "error") and r.error_code != "interrupted":
            err.print(f"error: {r.error}", markup=False)
        elif r.status == "interrupted" or outcome.interrupted:
            err.print("interrupted", markup=False)
        elif r.status != "ok":
            err.print(f"{r.server}: {_status_line(r)}", markup=False)
    return outcome.exit_code


def _status_line(r: Any) -> str:
    if r.status == "failed" and r.exit_code is not None:
        return f"exit status {r.exit_code}"
    return f"{r.status}: {r.error}" if r.error else r.status
