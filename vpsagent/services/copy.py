"""`vpsagent cp`: files to and from a server over SFTP, with the stored credentials and the
pinned host key; each copy is one audit row (source `cp`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vpsagent import errors
from vpsagent.db.inventory import LOCAL
from vpsagent.remote.transfer import Plan, Progress, download, plan_download, plan_upload, upload

if TYPE_CHECKING:
    from vpsagent.services.context import Context

SOURCE = "cp"
# NAME:path, as scp spells it; a local path with a colon in it is written ./a:b or /a:b
_REMOTE = re.compile(r"^(?P<server>[A-Za-z0-9][A-Za-z0-9._-]*):(?P<path>.*)$")


@dataclass(frozen=True)
class Endpoint:
    server: str | None  # None: this machine
    path: str

    @classmethod
    def parse(cls, spec: str) -> Endpoint:
        m = _REMOTE.match(spec)
        if m is None:
            return cls(None, spec)
        return cls(m.group("server"), m.group("path"))

    def __str__(self) -> str:
        return f"{self.server}:{self.path}" if self.server else self.path


@dataclass
class CopyResult:
    server: str
    direction: str  # "upload" | "download"
    source: str
    destination: str
    files: int
    directories: int
    bytes: int
    duration_s: float
    audit_id: int | None = None


def _sides(src: str, dest: str) -> tuple[Endpoint, Endpoint, str]:
    a, b = Endpoint.parse(src), Endpoint.parse(dest)
    if a.server and b.server:
        raise errors.UsageError("both sides are on servers: copy to here first, then on (cp A:x . && cp x B:)")
    if not a.server and not b.server:
        raise errors.UsageError("neither side names a server: write one side as NAME:path (for local "
                                "copies use cp)")
    server = a.server or b.server
    assert server is not None
    if server == LOCAL:
        raise errors.InvalidInput("'local' is this machine: use cp")
    return a, b, server


def copy_files(ctx: Context, src: str, dest: str, *, recursive: bool = False,
               on_progress: Progress | None = None, on_plan: Callable[[Plan], None] | None = None) -> CopyResult:
    """Copy SRC to DEST (one of them `NAME:path`); `on_plan` hears the total before bytes move."""
    import time

    from vpsagent.remote.base import CommandResult
    from vpsagent.remote.ssh import SSHHost
    from vpsagent.services.fleet import open_fleet
    from vpsagent.services.shell import record_failure

    a, b, server = _sides(src, dest)
    direction = "upload" if b.server else "download"
    label = f"cp{' -r' if recursive else ''} {a} {b}"
    with open_fleet(ctx, [server]) as fleet:
        host = fleet.host(server)
        assert isinstance(host, SSHHost)  # every server but `local`, refused above
        started = time.monotonic()

        def run() -> Plan:
            sftp = host.sftp()
            if direction == "upload":
                plan = plan_upload(sftp, Path(a.path).expanduser(), b.path, recursive=recursive)
                if on_plan is not None:
                    on_plan(plan)
                upload(sftp, plan, on_progress)
            else:
                plan = plan_download(sftp, a.path, Path(b.path).expanduser(), recursive=recursive)
                if on_plan is not None:
                    on_plan(plan)
                download(sftp, plan, on_progress)
            return plan

        # not fleet.operation: a Ctrl-C must complete the row as interrupted, not leave it running
        row = fleet.audit.start(server=server, command=label, source=SOURCE)
        try:
            plan = run()
        except BaseException as exc:
            record_failure(fleet, row, exc, time.monotonic() - started)
            raise
        fleet.audit.finish(row, CommandResult(host=server, command=label, exit_code=0,
                                              duration_s=time.monotonic() - started, stdout_bytes=plan.total_bytes))
    return CopyResult(server=server, direction=direction, source=str(a), destination=str(b),
                      files=len(plan.files), directories=len(plan.dirs), bytes=plan.total_bytes,
                      duration_s=time.monotonic() - started, audit_id=row)
