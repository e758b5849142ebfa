"""Types for JSON documents: Messages API content blocks, stored messages, YAML plans,
`--json` output.

Their shape is checked at run time where they are read (the SDK, the plan schema, the
tool input validation), not by the type checker: this is the one place `Any` stands for
them, so no other module needs to write it.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any, TypeAlias

from vpsagent.secret import Secret

JSON: TypeAlias = Any  # type: ignore[explicit-any]  # a JSON value; its shape is checked where it is read
JSONObject: TypeAlias = dict[str, JSON]
JSONList: TypeAlias = list[JSON]


def to_jsonable(value: object) -> JSON:
    """Dataclasses, enums, paths, datetimes -> JSON types. A Secret becomes `***`; a
    dataclass field marked `metadata={"hidden": True}` is left out (credentials, raw output)."""
    if isinstance(value, Secret):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)
                if not f.metadata.get("hidden")}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value
