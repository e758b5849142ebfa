"""Files the user hands us (test plans, a deploy config, the policy and config files),
read with a limit before anything parses them.

`/dev/zero` or a FIFO would be read until memory runs out (or forever), and a 50 MB
YAML file takes minutes and gigabytes to parse: only a regular file no larger than the
limit is read, and a file that grows while it is read is cut off at the limit too.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from vpsagent.errors import InvalidInput

DEFAULT_MAX_BYTES = 1024 * 1024  # 1 MiB: a real plan or config is a few KiB
_SIZE = re.compile(r"(?i)\s*(\d+)\s*(b|k|kb|kib|m|mb|mib)?\s*")
_SIZE_UNITS = {None: 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024 * 1024, "mb": 1024 * 1024,
               "mib": 1024 * 1024}
MAX_LIMIT = 256 * 1024 * 1024


def size_limit(text: str, *, what: str) -> int:
    """`1048576`, `512KiB`, `4MiB` (K and M are 1024-based) as a number of bytes, 1 B to 256 MiB."""
    m = _SIZE.fullmatch(text)
    if not m:
        raise InvalidInput(f"{what}: {text!r} is not a size", hint="use e.g. 1MiB, 512KiB or a number of bytes")
    value = int(m.group(1)) * _SIZE_UNITS[m.group(2).lower() if m.group(2) else None]
    if not 0 < value <= MAX_LIMIT:
        raise InvalidInput(f"{what}: {text!r} must be between 1 byte and 256 MiB")
    return value


def _say(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n % (1024 * 1024) == 0 else (
        f"{n // 1024} KiB" if n % 1024 == 0 else f"{n} bytes")


SETTING = "VPSAGENT_MAX_FILE_SIZE"


def too_big(path: str, size: int, limit: int, *, setting: str | None = SETTING) -> InvalidInput:
    """`setting` names what raises the limit (None: a fixed limit, e.g. for a private key)."""
    return InvalidInput(f"{path}: {size} bytes is more than the limit of {_say(limit)} for a file vpsagent reads",
                        hint=f"raise it with {setting} if the file is really meant to be this large" if setting else None)


def read_bounded(path: str | Path, limit: int = DEFAULT_MAX_BYTES, *, setting: str | None = SETTING) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; InvalidInput (exit 2) for anything
    else (a device, a FIFO, a directory, a larger file). OSError when it cannot be opened."""
    # O_NONBLOCK: opening a FIFO with no writer would otherwise wait forever
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InvalidInput(f"{path}: not a regular file", hint="give the path of a file")
        if st.st_size > limit:
            raise too_big(str(path), st.st_size, limit, setting=setting)
        chunks, got = [], 0
        while got <= limit:
            chunk = os.read(fd, min(64 * 1024, limit + 1 - got))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        if got > limit:  # it grew while we read it
            raise too_big(str(path), got, limit, setting=setting)
        return b"".join(chunks)
    finally:
        os.close(fd)
