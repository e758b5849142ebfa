"""How `vpsagent run` looks: output as it streams, a line per server that did not succeed,
a summary after a many-server run — or, with `--json`, the one envelope."""

from __future__ import annotations

from vpsagent.outcomes import CommandStatus
from vpsagent.render import Output
from vpsagent.render.stream import Prefixer, raw_writer, server_status_line, summary_line
from vpsagent.services.run import RunOutcome, ServerRun


class RunDisplay:
    def __init__(self, out: Output) -> None:
        self.out = out
        self.many = False
        self.prefixer: Prefixer | None = None

    @property
    def broken(self) -> bool:
        """The reader of stdout went away (`| head`)."""
        return self.prefixer is not None and self.prefixer.broken

    def start(self, names: list[str]) -> None:
        self.many = len(names) > 1
        if self.many and not self.out.json_mode:
            self.prefixer = Prefixer(max(len(n) for n in names))

    def on_output(self, server: str, which: str, chunk: bytes) -> None:
        if self.out.json_mode:
            return
        if self.prefixer is not None:
            self.prefixer.write(server, which, chunk)
        else:
            raw_writer(server, which, chunk)

    def server_done(self, r: ServerRun) -> None:
        if self.prefixer is not None:
            if self.prefixer.broken:
                return  # the reader left: nothing more to say
            try:
                self.prefixer.flush(r.server)
            except BrokenPipeError:
                return
        if not self.out.json_mode and self.many and r.status != CommandStatus.OK:
            self.out.err.print(server_status_line(r.server, r.status, r.exit_code, r.error, r.error_code),
                               markup=False)

    def finish(self, outcome: RunOutcome) -> int:
        if self.out.json_mode:
            data = {"command": outcome.command, "summary": outcome.counts(), "interrupted": outcome.interrupted,
                    "servers": outcome.servers}
            errs = [{"code": r.error_code or r.status, "message": f"{r.server}: {r.error}"}
                    for r in outcome.servers if r.status != CommandStatus.OK and r.error]
            return self.out.emit(data, exit_code=outcome.exit_code, errors=errs)
        err = self.out.err
        if self.many:
            for r in outcome.servers:
                if r.status == CommandStatus.SKIPPED:
                    err.print(f"{r.server}: {r.error}", markup=False)
            err.print(summary_line(outcome.counts(), len(outcome.servers)), markup=False)
            return outcome.exit_code
        r = outcome.servers[0]
        if r.status == CommandStatus.INTERRUPTED or outcome.interrupted:
            err.print("interrupted", markup=False)
        elif r.status in (CommandStatus.UNREACHABLE, CommandStatus.ERROR):
            err.print(f"error: {r.error}", markup=False)
        elif r.status != CommandStatus.OK:
            err.print(server_status_line(r.server, r.status, r.exit_code, r.error, r.error_code), markup=False)
        return outcome.exit_code
