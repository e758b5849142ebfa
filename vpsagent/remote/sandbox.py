"""A read-only view of a server's filesystem for commands that should only read.

The safety gate's read-only class is a judgement; this makes it hold on the server too.
A command rated read-only (and every command of `ask --read-only`) runs inside a view of
the filesystem where every write fails with EROFS and changes nothing:

- **bubblewrap** (`bwrap --ro-bind / /`, with `/dev` and `/proc`) when it is installed and
  the server lets it create namespaces (root, or unprivileged user namespaces);
- otherwise, **as root**, a private mount namespace (`unshare -m`) in which every mount is
  remounted read-only.

Either way `/var/tmp` is a private, empty, writable tmpfs and `TMPDIR` points at it, so
tools that need scratch space (`sort`, `mktemp`) work, while `/tmp` stays visible (read-only):
inspecting `/tmp/app.log` is common, and a private `/tmp` would hide it.

Which one a server offers is found out once per connection (`detect`). Where neither is
possible the command runs as it is, and the caller says so once per server.

What it does not stop: signals to other processes (`kill`), network calls (`curl -X
POST`, talking to a database socket), writes to devices (`/dev/...`) and to mounts
created after it started. The gate still judges those; the sandbox is a second line.
"""

from __future__ import annotations

import shlex
from enum import StrEnum


class Sandbox(StrEnum):
    BWRAP = "bwrap"
    UNSHARE = "unshare"
    NONE = "none"


# Prints the kind of sandbox that works here. Each candidate is tried for real (a probe
# write must fail), not just looked up: bwrap may be installed but refused namespaces.
_PROBE = "/etc/.vpsagent-sandbox-probe"
DETECT = (
    "if command -v bwrap >/dev/null 2>&1 && "
    f"bwrap --ro-bind / / --dev /dev --proc /proc /bin/sh -c '! true > {_PROBE}' 2>/dev/null; "
    "then echo bwrap; "
    "elif [ \"$(id -u)\" = 0 ] && command -v unshare >/dev/null 2>&1 && "
    "unshare -m --propagation private /bin/sh -c 'mount -o remount,bind,ro / && ! true > "
    f"{_PROBE}' 2>/dev/null; then echo unshare; else echo none; fi"
)

_REMOUNT_ALL = (
    # every mount, deepest first, read-only; mount points in /proc/mounts escape spaces as \040
    "for m in $(awk '{print $2}' /proc/self/mounts | sort -r); do "
    "mount -o remount,bind,ro \"$(printf '%b' \"$m\")\" 2>/dev/null; done; "
    "mount -t tmpfs -o mode=1777 tmpfs /var/tmp 2>/dev/null; TMPDIR=/var/tmp; export TMPDIR; "
)


def parse_detect(stdout: str) -> Sandbox:
    word = stdout.strip().splitlines()[-1].strip() if stdout.strip() else ""
    return Sandbox(word) if word in Sandbox._value2member_map_ else Sandbox.NONE


def wrap(command: str, kind: Sandbox) -> str:
    """`command` to run inside the read-only view (unchanged for Sandbox.NONE)."""
    if kind == Sandbox.BWRAP:
        return ("bwrap --ro-bind / / --dev /dev --proc /proc --tmpfs /var/tmp --setenv TMPDIR /var/tmp "
                f"--die-with-parent /bin/sh -c {shlex.quote(command)}")
    if kind == Sandbox.UNSHARE:
        inner = _REMOUNT_ALL + f"exec /bin/sh -c {shlex.quote(command)}"
        return f"unshare -m --propagation private /bin/sh -c {shlex.quote(inner)}"
    return command
