"""Judging a write to a path: redirections, `tee`, `-o FILE` options, `cp` targets.

- `/dev/null` and friends: nothing written.
- A critical file (passwd, shadow, sudoers, fstab, boot, authorized_keys) or a block device:
  destructive.
- A persistence path (cron, systemd units, shell profiles, init scripts): at least unknown,
  and what is written there is judged as the code it will become.
- Emptying a file (`> f`, `: > f`, `cp /dev/null f`, `truncate -s 0 f`) outside scratch space,
  or overwriting a data file (`/var/lib/…`, `*.db`…) with given content: destructive.
- Anything else: a change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vpsagent.safety import paths
from vpsagent.safety.model import CHANGE, DES, RO, UNKNOWN, Finding
from vpsagent.safety.parse import Word

if TYPE_CHECKING:
    from vpsagent.safety.analyze import Analyzer, Feed

_READS = frozenset({"<", "<&", "<<", "<<<", "<<-"})
_DUPS = frozenset({">&", "<&", ">&-", "<&-"})


def judge_redirect(op: str, fd: str, target: Word, content: Feed, an: Analyzer, depth: int) -> Finding | None:
    """The part a redirection adds, or None when it only reads or duplicates descriptors."""
    if op in _READS:
        return None
    if op in _DUPS and (target.value.isdigit() or target.value == "-" or op.endswith("-")):
        return None
    if target.procsub is not None:
        return None
    data = content.data if content.kind == "data" else None
    return judge_write(target, f"redirection {op}", data, append=op in (">>", "&>>"), an=an, depth=depth)


def judge_write(target: Word, what: str, content: bytes | None, *, append: bool = False,
                an: Analyzer | None = None, depth: int = 0) -> Finding:
    """What writing `content` (None: not known) to `target` risks."""
    value = target.value
    if not target.dynamic and paths.is_sink(value):
        return Finding(RO, "")
    if target.dynamic and not target.prefix.strip("/"):
        if content is not None and not content.strip() and not append:
            return Finding(DES, f"{what} {value} empties a file only known at run time")
        return Finding(CHANGE, f"{what} {value} writes a file only known at run time")
    path = value if not target.dynamic else target.prefix
    if paths.is_critical_file(path):
        return Finding(DES, f"{what} {value} overwrites a critical system file or device")
    kind = paths.persistence_kind(path)
    if kind is not None:
        return _persistence(value, kind, content, what, an, depth)
    if paths.is_access_config(path):
        return _access(value, what, content, append)
    if not append and content is not None and not content.strip() and not paths.is_scratch(path):
        return Finding(DES, f"{what} {value} empties the file (its data is lost)")
    if not append and paths.is_database_file(path) and not paths.is_scratch(path):
        return Finding(DES, f"{what} {value} overwrites a database file")
    return Finding(CHANGE, f"{what} {value} writes a file")


def _access(value: str, what: str, content: bytes | None, append: bool) -> Finding:
    """sshd's configuration: replacing it, or adding a line that shuts people out, is a lock-out."""
    if not append:
        return Finding(DES, f"{what} {value} replaces the SSH server's configuration (a lock-out if it is wrong)")
    line = paths.lockout_directive(content.decode("utf-8", "replace")) if content is not None else None
    if content is None or line is not None:
        return Finding(DES, f"{what} {value} adds `{line or 'unseen lines'}` to the SSH server's configuration (a lock-out)")
    return Finding(CHANGE, f"{what} {value} changes the SSH server's configuration")


def _persistence(value: str, kind: str, content: bytes | None, what: str, an: Analyzer | None, depth: int) -> Finding:
    base = Finding(UNKNOWN, f"{what} {value} writes code that runs later ({_KIND_WHY[kind]})")
    if content is None or an is None:
        return base
    from vpsagent.safety.scripts import judge_persistent_content

    found = judge_persistent_content(an, kind, content, value, depth)
    return base.worst(found)


_KIND_WHY = {
    "crontab": "a cron table",
    "user-crontab": "a user's cron table",
    "unit": "a systemd unit",
    "shell": "a script or shell profile that runs by itself",
    "config-code": "configuration that runs commands or loads code",
}


__all__ = ["judge_redirect", "judge_write", "RO"]
