"""The one interface every part of vpsagent uses to touch a server.

`Host` has two implementations: `remote.ssh.SSHHost` (Fabric/paramiko) and
`remote.local.LocalHost` (this machine, the built-in `local` server). Callers never
know which one they hold. Nothing here prints: output reaches callers through the
`on_stdout` / `on_stderr` callbacks and the returned `CommandResult`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

# What a CommandResult keeps of each stream when the caller does not say: head and
# tail, so a 200 MiB output never sits in memory while the counts and the hash stay exact.
DEFAULT_CAPTURE = 4 * 1024 * 1024

OutputCallback = Callable[[bytes], None]


class BoundedCapture:
    """Keeps the first and last `limit/2` bytes of a stream, its size and sha256."""

    def __init__(self, limit: int = DEFAULT_CAPTURE):
        self.limit = max(0, limit)
        self._head = bytearray()
        self._tail = bytearray()
        self.total = 0
        self._sha = hashlib.sha256()

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.total += len(chunk)
        self._sha.update(chunk)
        half = self.limit // 2
        room = half - len(self._head)
        if room > 0:
            self._head += chunk[:room]
            chunk = chunk[room:]
        if chunk and half:
            self._tail += chunk
            if len(self._tail) > half:
                del self._tail[: len(self._tail) - half]

    @property
    def truncated(self) -> bool:
        return self.total > len(self._head) + len(self._tail)

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()

    def value(self) -> bytes:
        if not self.truncated:
            return bytes(self._head + self._tail)
        cut = self.total - len(self._head) - len(self._tail)
        marker = f"\n[... {cut} bytes cut of {self.total} ...]\n".encode()
        return bytes(self._head) + marker + bytes(self._tail)


@dataclass
class CommandResult:
    """What running one command on one host produced.

    `exit_code` is None when the command did not finish (timeout, lost connection,
    interrupted); `error` then says why in one line and `status` names it.
    """

    host: str
    command: str
    exit_code: int | None
    stdout: bytes = b""
    stderr: bytes = b""
    duration_s: float = 0.0
    stdout_bytes: int = 0
    stderr_bytes: int = 0
    stdout_sha256: str = ""
    stderr_sha256: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    status: str = "ok"  # ok | failed | timeout | connection_lost | interrupted | error
    error: str | None = None
    # set when vpsagent knows why a failed command failed (sudo_rejected, sudo_needs_password):
    # `error` then says it in one line, and it is shown beside the exit status
    error_code: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.exit_code == 0

    def stdout_text(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    def stderr_text(self) -> str:
        return self.stderr.decode("utf-8", "replace")


@runtime_checkable
class Host(Protocol):
    @property
    def name(self) -> str: ...

    def connect(self) -> None:
        """Open the connection now (otherwise the first command does); raises Unreachable."""
        ...

    def interrupt(self) -> None:
        """Ask the running command to stop (from another thread: Ctrl-C in a fan-out)."""
        ...

    def run(
        self,
        command: str,
        *,
        timeout: float | None = None,
        sudo: bool = False,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
        capture: int = DEFAULT_CAPTURE,
    ) -> CommandResult:
        """Run `command` through the login shell. Never forwards local stdin.

        Connection problems raise `errors.Unreachable` (or a subclass); a timeout, a
        connection lost mid-command, or an interrupt return a result with exit_code None.
        """
        ...

    def read_file(self, path: str, max_bytes: int | None = None) -> bytes: ...

    def write_file(self, path: str, content: bytes, mode: int | None = None) -> None: ...

    def upload(self, path: str, content: bytes, mode: int = 0o600) -> None:
        """A new file of any size, as fast as the link allows (a deploy's archive); written
        beside `path` and renamed, so it appears whole or not at all."""
        ...

    def close(self) -> None: ...
