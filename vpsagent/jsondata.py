"""Types for JSON documents: Messages API content blocks, stored messages, YAML plans,
`--json` output.

Their shape is checked at run time where they are read (the SDK, the plan schema, the
tool input validation), not by the type checker: this is the one place `Any` stands for
them, so no other module needs to write it.
"""

from __future__ import annotations

from typing import Any, TypeAlias

JSON: TypeAlias = Any  # type: ignore[explicit-any]  # a JSON value; its shape is checked where it is read
JSONObject: TypeAlias = dict[str, JSON]
JSONList: TypeAlias = list[JSON]
