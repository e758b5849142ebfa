"""Change plans: what `ask --plan` writes and `apply` runs — the format, its validation, its hash.

The format is a public contract documented in docs/plans.md. A change plan is YAML:

    vpsagent: change-plan/1
    request: upgrade nginx and reload it
    model: claude-sonnet-4-5
    conversation: 12
    created: "2026-12-01T15:00:00+00:00"
    selection: {servers: [web1], tags: [web]}
    steps:
      - name: upgrade nginx
        servers: all                      # or a list of names; `tags: [..]` narrows too
        command: apt-get install -y --only-upgrade nginx
        why: ...
        expect: ...                       # the expected effect, in words
        verify:                           # test-plan steps (docs/testplans.md): a list, or one
          - package: {name: nginx, version: ">=1.24"}
        undo: apt-get install -y --allow-downgrades nginx=1.18.0-6

A step has `command` or `write: {path, content, mode?}`, never both. The plan's identity is
the SHA-256 of the file's bytes: what was reviewed is what runs, or nothing runs.

Loading is the test plans' loader (safe YAML, positions), so problems are `file:line:col`.
This module knows no server, policy or database: the apply service brings those.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vpsagent.jsondata import JSON, JSONObject
from vpsagent.plans.schema import (
    Plan,
    PlanInvalid,
    PositionedDoc,
    Problem,
    embedded_steps,
    load_positioned,
    parse_duration,
)

FORMAT = "change-plan/1"
PLAN_KEYS = ("vpsagent", "request", "model", "conversation", "selection", "created", "steps")
SELECTION_KEYS = ("servers", "tags")
STEP_KEYS = ("name", "servers", "tags", "command", "write", "why", "expect", "verify", "undo", "timeout")
WRITE_KEYS = ("path", "content", "mode")
DEFAULT_STEP_TIMEOUT = 600.0  # a package upgrade may take minutes
ALL = "all"


def content_hash(data: bytes) -> str:
    """The plan's identity: SHA-256 of the file's bytes (hex)."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class FileWrite:
    path: str
    content: str
    mode: int | None = None

    def label(self) -> str:
        mode = f", mode {self.mode:04o}" if self.mode is not None else ""
        return f"write_file {shlex.quote(self.path)} ({len(self.content.encode())} bytes{mode})"


@dataclass
class ChangeStep:
    index: int  # 1-based
    name: str
    line: int
    col: int
    command: str | None = None
    write: FileWrite | None = None
    servers: list[str] = field(default_factory=list)  # empty: every server of the plan
    tags: list[str] = field(default_factory=list)
    why: str = ""
    expected: str = ""
    verify: Plan | None = None
    undo: str | None = None
    timeout: float = DEFAULT_STEP_TIMEOUT

    @property
    def action(self) -> str:
        """What runs, as the audit log and the approval show it."""
        if self.write is not None:
            return self.write.label()
        return self.command or ""

    def applies_to(self, server: str, tags: Sequence[str]) -> bool:
        if self.servers and server not in self.servers:
            return False
        return not self.tags or any(t in tags for t in self.tags)


@dataclass
class ChangePlan:
    path: str
    hash: str
    text: str
    steps: list[ChangeStep]
    request: str = ""
    model: str = ""
    conversation_id: int | None = None
    created: str = ""
    servers: list[str] = field(default_factory=list)  # the selection as written
    tags: list[str] = field(default_factory=list)

    @property
    def short(self) -> str:
        return self.hash[:12]


# --------------------------------------------------------------------------- validation


def _describe(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


class _Checker:
    def __init__(self, doc: PositionedDoc):
        self.doc = doc

    def err(self, path: tuple[str | int, ...], msg: str, key: bool = False) -> None:
        self.doc.add(path, msg, key=key)

    def unknown(self, data: JSONObject, allowed: Sequence[str], path: tuple[str | int, ...], where: str) -> None:
        for k in data:
            if k not in allowed:
                self.err(path + (k,), f"unknown key {k!r} in {where} (allowed: {', '.join(allowed)})", key=True)

    def text(self, data: JSONObject, key: str, path: tuple[str | int, ...], label: str, *,
             required: bool = False) -> str:
        value = data.get(key)
        if value is None:
            if required:
                self.err(path, f"{label}: missing required key {key!r}")
            return ""
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str) or (required and not value.strip()):
            self.err(path + (key,), f"{label}: {key} must be a non-empty string, got {_describe(value)}")
            return ""
        return value

    def names(self, value: JSON, path: tuple[str | int, ...], label: str, *, all_ok: bool = False) -> list[str]:
        if value is None or (all_ok and value == ALL):
            return []
        if isinstance(value, str) and value:
            return [value]
        if isinstance(value, list) and all(isinstance(v, str) and v for v in value):
            return list(value)
        self.err(path, f"{label}: expected a list of names{' or all' if all_ok else ''}, got {_describe(value)}")
        return []

    def plan(self, data: JSON, file: str, raw: bytes, text: str) -> ChangePlan | None:
        if not isinstance(data, dict):
            self.err((), f"a change plan is a mapping with steps, got {_describe(data)}")
            return None
        self.unknown(data, PLAN_KEYS, (), "the plan")
        fmt = data.get("vpsagent", FORMAT)
        if fmt != FORMAT:
            self.err(("vpsagent",), f"vpsagent: this is {fmt!r}, not a {FORMAT} (a test plan? use `vpsagent test`)")
        conv = data.get("conversation")
        if conv is not None and (isinstance(conv, bool) or not isinstance(conv, int)):
            self.err(("conversation",), f"conversation: expected a conversation id (a whole number), "
                     f"got {_describe(conv)}")
            conv = None
        sel = data.get("selection") or {}
        servers: list[str] = []
        tags: list[str] = []
        if isinstance(sel, dict):
            self.unknown(sel, SELECTION_KEYS, ("selection",), "selection")
            servers = self.names(sel.get("servers"), ("selection", "servers"), "selection.servers")
            tags = self.names(sel.get("tags"), ("selection", "tags"), "selection.tags")
        else:
            self.err(("selection",), f"selection: expected a mapping with servers and tags, got {_describe(sel)}")
        created = data.get("created", "")
        return ChangePlan(
            path=file, hash=content_hash(raw), text=text, steps=self.steps(data),
            request=self.text(data, "request", (), "the plan"), model=self.text(data, "model", (), "the plan"),
            conversation_id=conv if isinstance(conv, int) else None,
            created=created if isinstance(created, str) else str(created), servers=servers, tags=tags,
        )

    def steps(self, data: JSONObject) -> list[ChangeStep]:
        raw = data.get("steps")
        if "steps" not in data:
            self.err((), "missing required key 'steps'")
            return []
        if not isinstance(raw, list) or not raw:
            self.err(("steps",), "steps: expected a non-empty list of steps")
            return []
        out = [self.step(r, i) for i, r in enumerate(raw)]
        return [s for s in out if s is not None]

    def step(self, raw: JSON, i: int) -> ChangeStep | None:
        path: tuple[str | int, ...] = ("steps", i)
        label = f"step {i + 1}"
        if not isinstance(raw, dict):
            self.err(path, f"{label}: expected a mapping with command (or write), why and expect")
            return None
        self.unknown(raw, STEP_KEYS, path, label)
        line, col = self.doc.pos.get(path, (0, 0))
        step = ChangeStep(index=i + 1, name="", line=line, col=col)
        self.action(raw, path, label, step)
        step.name = self.text(raw, "name", path, label) or " ".join(step.action.split())[:60]
        step.servers = self.names(raw.get("servers"), path + ("servers",), f"{label}: servers", all_ok=True)
        step.tags = self.names(raw.get("tags"), path + ("tags",), f"{label}: tags")
        step.why = self.text(raw, "why", path, label, required=True)
        step.expected = self.text(raw, "expect", path, label, required=True)
        undo = raw.get("undo")
        if undo is not None and (not isinstance(undo, str) or not undo.strip()):
            self.err(path + ("undo",), f"{label}: undo must be a shell command, got {_describe(undo)}")
        elif isinstance(undo, str):
            step.undo = undo
        if "timeout" in raw:
            try:
                step.timeout = parse_duration(raw["timeout"])
            except ValueError as e:
                self.err(path + ("timeout",), f"{label}: {e}")
        if raw.get("verify") is not None:
            step.verify = embedded_steps(self.doc, path + ("verify",), raw["verify"], f"verify step {i + 1}")
        return step

    def action(self, raw: JSONObject, path: tuple[str | int, ...], label: str, step: ChangeStep) -> None:
        """`command` or `write`: exactly one."""
        has = [k for k in ("command", "write") if k in raw]
        if len(has) != 1:
            self.err(path, f"{label}: give exactly one of command or write")
            return
        if has[0] == "command":
            cmd = raw["command"]
            if not isinstance(cmd, str) or not cmd.strip():
                self.err(path + ("command",), f"{label}: command must be a non-empty string, got {_describe(cmd)}")
                return
            step.command = cmd
            return
        w = raw["write"]
        wpath = path + ("write",)
        if not isinstance(w, dict):
            self.err(wpath, f"{label}: write must be a mapping with path and content")
            return
        self.unknown(w, WRITE_KEYS, wpath, f"{label}: write")
        fpath, content = w.get("path"), w.get("content")
        if not isinstance(fpath, str) or not fpath.startswith("/"):
            self.err(wpath + ("path",) if "path" in w else wpath, f"{label}: write.path must be an absolute path")
            return
        if not isinstance(content, str):
            self.err(wpath + ("content",) if "content" in w else wpath, f"{label}: write.content must be a string")
            return
        step.write = FileWrite(fpath, content, self.mode(w.get("mode"), wpath + ("mode",), label))

    def mode(self, value: JSON, path: tuple[str | int, ...], label: str) -> int | None:
        if value is None:
            return None
        try:
            mode = int(str(value), 8)
        except ValueError:
            mode = -1
        if not 0 <= mode <= 0o7777:
            self.err(path, f"{label}: write.mode must be octal permissions such as \"0644\"")
            return None
        return mode


def validate_bytes(raw: bytes, file: str) -> tuple[ChangePlan | None, list[Problem]]:
    """Parse and validate a change plan; the plan (None when unusable) and every problem."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return None, [Problem(file, 1, 1, f"the plan is not UTF-8 text ({e.reason})")]
    data, doc = load_positioned(text, file)
    if doc.problems and data is None:
        return None, list(doc.problems)
    plan = _Checker(doc).plan(data, file, raw, text)
    problems = sorted(doc.problems, key=lambda p: (p.line, p.col))
    return (None if problems else plan), problems


def read_plan_bytes(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise PlanInvalid([Problem(str(path), 0, 0, f"cannot read the plan: {e.strerror}")]) from None


def load_change_plan(path: str | Path) -> ChangePlan:
    """Load and validate a change plan file; raises PlanInvalid with every problem."""
    plan, problems = validate_bytes(read_plan_bytes(path), str(path))
    if problems or plan is None:
        raise PlanInvalid(problems)
    return plan


# --------------------------------------------------------------------------- writing


def plan_document(*, request: str, model: str, conversation_id: int | None, created: str,
                  servers: Sequence[str], tags: Sequence[str], steps: Sequence[JSONObject]) -> JSONObject:
    """The plan as data, keys in the documented order (steps as the model or canary gave them)."""
    selection: JSONObject = {}
    if servers:
        selection["servers"] = list(servers)
    if tags:
        selection["tags"] = list(tags)
    doc: JSONObject = {"vpsagent": FORMAT, "request": request, "model": model, "conversation": conversation_id}
    doc.update({"created": created, "selection": selection, "steps": [_ordered(s) for s in steps]})
    return doc


def _ordered(step: JSONObject) -> JSONObject:
    out: JSONObject = {k: step[k] for k in STEP_KEYS if k in step and step[k] not in (None, "", [])}
    if isinstance(out.get("write"), dict):
        out["write"] = {k: out["write"][k] for k in WRITE_KEYS if out["write"].get(k) is not None}
    return out


def dump_yaml(doc: JSONObject) -> str:
    """YAML people can review: block style, multi-line strings as literal blocks, key order kept."""
    import yaml

    class _Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _Dumper.add_representer(str, text)
    header = ("# A vpsagent change plan: review it, then `vpsagent apply` it (docs/plans.md).\n"
              "# Editing it changes its hash: `vpsagent plan show` it again before applying.\n")
    return header + yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100,
                              default_flow_style=False)
