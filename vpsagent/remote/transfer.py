"""Copying files and directory trees over SFTP (`vpsagent cp`), with cp/scp semantics:
a file copied onto an existing directory lands in it under its own name; `-r DIR NEW`
makes NEW a copy of DIR (empty directories included); permission bits are kept in both
directions. Remote paths are taken literally (SFTP has no shell); `~/` means the login
directory, as SFTP's relative paths do.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from vpsagent import errors

if TYPE_CHECKING:
    import paramiko

# (file being copied, bytes of it done, its size); called as the bytes move
Progress = Callable[[str, int, int], None]


@dataclass
class Plan:
    """What one copy does: directories to make, then files (source, target, size, mode)."""

    dirs: list[tuple[str, int]] = field(default_factory=list)  # (target, mode)
    files: list[tuple[str, str, int, int]] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(f[2] for f in self.files)


def remote_path(path: str) -> str:
    """`~/x` and `~` as SFTP understands them (relative to the login directory)."""
    if path in ("", "~"):
        return "."
    return path[2:] or "." if path.startswith("~/") else path


def _remote_stat(sftp: paramiko.SFTPClient, path: str) -> paramiko.SFTPAttributes | None:
    try:
        return sftp.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise errors.Failure(f"{path}: {exc.strerror or exc}") from None


def _is_dir(attrs: paramiko.SFTPAttributes | None) -> bool:
    return attrs is not None and attrs.st_mode is not None and stat.S_ISDIR(attrs.st_mode)


# -- upload ------------------------------------------------------------------------------

def plan_upload(sftp: paramiko.SFTPClient, src: Path, dest: str, *, recursive: bool) -> Plan:
    if not src.exists():
        raise errors.InvalidInput(f"{src}: no such file or directory")
    dest = remote_path(dest)
    if _is_dir(_remote_stat(sftp, dest)):
        dest = posixpath.join(dest, src.name)
    elif dest.endswith("/"):  # meant as a directory (SFTP's own answer would be a bare "Failure")
        raise errors.NotFound(f"{dest}: no such directory on the server", hint="create it first, or drop the /")
    plan = Plan()
    if not src.is_dir():
        plan.files.append((str(src), dest, src.stat().st_size, src.stat().st_mode & 0o7777))
        return plan
    if not recursive:
        raise errors.InvalidInput(f"{src} is a directory: copy it with -r")
    for here, dirnames, filenames in os.walk(src):
        dirnames.sort()
        rel = Path(here).relative_to(src)
        target = dest if str(rel) == "." else posixpath.join(dest, rel.as_posix())
        plan.dirs.append((target, Path(here).stat().st_mode & 0o7777))
        for f in sorted(filenames):
            p = Path(here) / f
            if p.is_file():
                plan.files.append((str(p), posixpath.join(target, f), p.stat().st_size, p.stat().st_mode & 0o7777))
    return plan


def upload(sftp: paramiko.SFTPClient, plan: Plan, progress: Progress | None = None) -> None:
    try:
        _upload(sftp, plan, progress)
    except OSError as exc:  # this machine's side: a file that cannot be read
        raise errors.Failure(f"{exc.filename or 'local file'}: {exc.strerror or exc}") from None


def _upload(sftp: paramiko.SFTPClient, plan: Plan, progress: Progress | None) -> None:
    for target, mode in plan.dirs:
        if not _is_dir(_remote_stat(sftp, target)):
            with _named(target):
                sftp.mkdir(target, mode | 0o700)
    for src, target, size, mode in plan.files:
        def step(done: int, _total: int, src: str = src, size: int = size) -> None:
            if progress is not None:
                progress(src, done, size)

        with open(src, "rb") as f, _named(target):
            sftp.putfo(f, target, size, callback=step, confirm=True)
            sftp.chmod(target, mode)
    for target, mode in plan.dirs:
        with _named(target):
            sftp.chmod(target, mode)


# -- download ----------------------------------------------------------------------------

def plan_download(sftp: paramiko.SFTPClient, src: str, dest: Path, *, recursive: bool) -> Plan:
    src = remote_path(src)
    attrs = _remote_stat(sftp, src)
    if attrs is None:
        raise errors.NotFound(f"{src}: no such file or directory on the server")
    if dest.is_dir():
        dest = dest / posixpath.basename(src.rstrip("/") or src)
    plan = Plan()
    if not _is_dir(attrs):
        plan.files.append((src, str(dest), attrs.st_size or 0, (attrs.st_mode or 0o644) & 0o7777))
        return plan
    if not recursive:
        raise errors.InvalidInput(f"{src} is a directory on the server: copy it with -r")
    _walk_remote(sftp, src, dest, attrs, plan)
    return plan


def _walk_remote(sftp: paramiko.SFTPClient, src: str, dest: Path, attrs: paramiko.SFTPAttributes,
                 plan: Plan) -> None:
    plan.dirs.append((str(dest), (attrs.st_mode or 0o755) & 0o7777))
    with _named(src):
        entries = sftp.listdir_attr(src)
    for entry in sorted(entries, key=lambda e: e.filename):
        path = posixpath.join(src, entry.filename)
        mode = entry.st_mode or 0
        if stat.S_ISDIR(mode):
            _walk_remote(sftp, path, dest / entry.filename, entry, plan)
        elif stat.S_ISREG(mode):
            plan.files.append((path, str(dest / entry.filename), entry.st_size or 0, mode & 0o7777))


def download(sftp: paramiko.SFTPClient, plan: Plan, progress: Progress | None = None) -> None:
    try:
        _download(sftp, plan, progress)
    except OSError as exc:  # this machine's side: a missing directory, a full disk
        raise errors.Failure(f"{exc.filename or 'local file'}: {exc.strerror or exc}") from None


def _download(sftp: paramiko.SFTPClient, plan: Plan, progress: Progress | None) -> None:
    for target, mode in plan.dirs:
        Path(target).mkdir(mode=mode | 0o700, exist_ok=True)
    for src, target, size, mode in plan.files:
        def step(done: int, _total: int, src: str = src, size: int = size) -> None:
            if progress is not None:
                progress(src, done, size)

        try:
            with open(target, "wb") as f, _named(src):
                sftp.getfo(src, f, callback=step)
        except BaseException:
            Path(target).unlink(missing_ok=True)  # no half file left behind
            raise
        os.chmod(target, mode)
    for target, mode in reversed(plan.dirs):
        os.chmod(target, mode)


@contextlib.contextmanager
def _named(path: str) -> Iterator[None]:
    """SFTP operations whose failure is one line naming the path."""
    try:
        yield
    except FileNotFoundError:
        raise errors.NotFound(f"{path}: no such file or directory") from None
    except PermissionError:
        raise errors.Failure(f"{path}: permission denied") from None
    except OSError as exc:
        raise errors.Failure(f"{path}: {_sftp_words(exc)}") from None


# SFTP's generic answers, and paramiko's own, in words that say what probably happened
_SFTP_WORDS = (("size mismatch in put", "the server did not keep what was written (not a regular file?)"),
               ("Failure", "the server refused it (a directory that does not exist, or not a regular file?)"))


def _sftp_words(exc: OSError) -> str:
    text = exc.strerror or str(exc)
    return next((words for raw, words in _SFTP_WORDS if text.startswith(raw)), text)
