"""Durations as people write them: `30s`, `2m`, `1m30s`, `500ms`, `1h`, `90d`, or seconds.

One parser for every flag, setting and plan field that takes a duration, so each is
finite, positive and within a sane maximum before anything runs (`inf` and `nan` parse
as floats and would otherwise mean "forever" or crash half-way).
"""

from __future__ import annotations

import math
import re

from vpsagent.errors import InvalidInput

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
HINT = "use e.g. 30s, 2m, 1m30s, 500ms, 1h, 90d"
YEAR = 366 * 86400.0


def seconds(text: str | float, *, what: str = "duration", maximum: float = YEAR) -> float:
    """The duration in seconds; InvalidInput (exit 2) unless 0 < value <= maximum and finite."""
    if isinstance(text, bool):
        raise InvalidInput(f"{what}: {text!r} is not a duration", hint=HINT)
    value = parse(text, what=what)
    if not math.isfinite(value) or value <= 0:
        raise InvalidInput(f"{what}: {text!r} must be a finite duration above zero", hint=HINT)
    if value > maximum:
        raise InvalidInput(f"{what}: {text!r} is longer than the maximum of {_say(maximum)}")
    return value


def parse(text: str | float, *, what: str = "duration") -> float:
    """The number of seconds as written, unchecked (it may be `inf`, `nan`, zero or negative):
    InvalidInput only when it is not a duration at all."""
    if isinstance(text, bool):
        raise InvalidInput(f"{what}: {text!r} is not a duration", hint=HINT)
    if isinstance(text, int | float):
        return float(text)
    return _parse(text.strip(), what)


def _parse(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for m in _PART.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not text or pos != len(text):
        raise InvalidInput(f"{what}: {text!r} is not a duration", hint=HINT)
    return total


def _say(value: float) -> str:
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if value >= size and value % size == 0:
            return f"{int(value // size)}{unit}"
    return f"{value:g}s"
