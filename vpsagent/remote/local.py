"""The built-in `local` server: commands on this machine, behind the same Host interface."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time
from pathlib import Path

from vpsagent.remote.base import (
    DEFAULT_CAPTURE,
    BoundedCapture,
    CommandResult,
    OutputCallback,
)

CHUNK = 256 * 1024
# How often a waiting command checks its interrupt flag (data wakes the loop at once).
TICK_S = 0.2


class LocalHost:
    def __init__(self, name: str = "local"):
        self._name = name
        self._interrupt = False

    @property
    def name(self) -> str:
        return self._name

    def connect(self) -> None:
        pass  # nothing to open: commands start processes on this machine

    def interrupt(self) -> None:
        # A single-server run gets Ctrl-C in its own loop; a fan-out's workers stop their
        # process groups when the run loop sees this flag.
        self._interrupt = True

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
        if sudo and os.geteuid() != 0:
            command = "sudo -n -- sh -c " + _quote(command)
        start = time.monotonic()
        out, err = BoundedCapture(capture), BoundedCapture(capture)
        # A new session so a timeout or Ctrl-C can stop the whole process group;
        # stdin is /dev/null: local stdin is never forwarded to a command.
        proc = subprocess.Popen(
            ["/bin/sh", "-c", command], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True, env=command_env(),
        )
        sel = selectors.DefaultSelector()
        assert proc.stdout is not None and proc.stderr is not None
        sel.register(proc.stdout, selectors.EVENT_READ, (out, on_stdout))
        sel.register(proc.stderr, selectors.EVENT_READ, (err, on_stderr))
        status, error = "ok", None
        deadline = start + timeout if timeout else None
        try:
            while sel.get_map():
                if self._interrupt:
                    status, error = "interrupted", "interrupted"
                    _kill(proc)
                    break
                wait = TICK_S if deadline is None else min(TICK_S, max(0.0, deadline - time.monotonic()))
                if deadline is not None and wait == 0.0:
                    status, error = "timeout", f"timed out after {timeout:g}s"
                    _kill(proc)
                    break
                for key, _ in sel.select(wait):
                    fileobj = key.fileobj  # one of the pipes registered above, never a bare fd
                    fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
                    chunk = os.read(fd, CHUNK)
                    if not chunk:
                        sel.unregister(key.fileobj)
                        continue
                    cap, cb = key.data
                    cap.feed(chunk)
                    if cb:
                        cb(chunk)
            code = proc.wait()
        except KeyboardInterrupt:
            _kill(proc)
            proc.wait()
            raise
        finally:
            sel.close()
            proc.stdout.close()
            proc.stderr.close()
        exit_code: int | None = None if status != "ok" else code
        if status == "ok" and code < 0:
            # killed by a signal: no exit status, as over SSH
            exit_code, status = None, "failed"
            error = f"the command was killed by signal {-code} ({signal.Signals(-code).name})"
        elif status == "ok" and code != 0:
            status = "failed"
        return CommandResult(
            host=self.name, command=command, exit_code=exit_code, stdout=out.value(), stderr=err.value(),
            duration_s=time.monotonic() - start, stdout_bytes=out.total, stderr_bytes=err.total,
            stdout_sha256=out.sha256, stderr_sha256=err.sha256, stdout_truncated=out.truncated,
            stderr_truncated=err.truncated, status=status, error=error,
        )

    def read_file(self, path: str, max_bytes: int | None = None) -> bytes:
        with open(Path(path).expanduser(), "rb") as fh:
            return fh.read(max_bytes) if max_bytes else fh.read()

    def write_file(self, path: str, content: bytes, mode: int | None = None) -> None:
        import secrets

        p = Path(path).expanduser()
        # an unpredictable name opened O_EXCL|O_NOFOLLOW: a symlink planted in a shared
        # directory cannot redirect the write or the chmod
        tmp = p.with_name(f".{p.name}.vpsagent-{secrets.token_hex(6)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(content)
                if mode is not None:
                    os.fchmod(fh.fileno(), mode)
                elif p.exists():
                    os.fchmod(fh.fileno(), p.stat().st_mode & 0o7777)
                else:
                    os.fchmod(fh.fileno(), 0o644)
            os.replace(tmp, p)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def upload(self, path: str, content: bytes, mode: int = 0o600) -> None:
        self.write_file(path, content, mode)

    def close(self) -> None:
        return None


# vpsagent's own secrets: a command on `local` (which the model may choose) must not be
# able to print them with `env` or read /proc/self/environ.
_SECRET_VARS = ("VPSAGENT_SECRET", "SESSION_SECRET", "VPSAGENT_NEW_SECRET", "ANTHROPIC_API_KEY",
                "GITHUB_TOKEN", "VPSAGENT_SMTP_URL")


def command_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SECRET_VARS}
    db = env.get("DATABASE_URL", "")
    if "@" in db and ":" in db.split("@", 1)[0].split("//", 1)[-1]:
        del env["DATABASE_URL"]  # carries a password
    return env


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _quote(s: str) -> str:
    import shlex

    return shlex.quote(s)
