"""Test plans: safe YAML loading with positions, validation, and the plan model.

The format is documented in docs/testplans.md (a public contract). Loading never
constructs anything but plain data: YAML is *composed* into nodes with the safe
loader, every node's tag is checked against the core schema (so `!!python/object`
is an invalid plan, never executed), and nodes are converted by hand while their
line/column is recorded. Validation reports every problem at once as
`file:line:col: message`, the way compilers and linters do.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from vpsagent.errors import InvalidInput
from vpsagent.jsondata import JSON, JSONObject
from vpsagent.plans import templating
from vpsagent.userfiles import DEFAULT_MAX_BYTES, read_bounded

if TYPE_CHECKING:
    import yaml

KINDS = ("run", "http", "file", "port", "service", "package", "process")
PLAN_KEYS = ("name", "description", "servers", "tags", "vars", "timeout", "fail_fast", "steps")
COMMON_STEP_KEYS = ("name", "timeout", "retry", "eventually", "sudo", "skip")
RUN_ONLY_KEYS = ("expect", "capture")
EXPECT_KEYS = ("exit", "stdout", "stderr")
MATCHER_KEYS = ("contains", "not_contains", "equals", "matches", "lt", "le", "gt", "ge")
KIND_KEYS: dict[str, dict[str, str]] = {
    # key -> type tag checked by _check_value
    "http": {
        "url": "str!",
        "from": "from",
        "method": "str",
        "status": "ints",
        "body_contains": "strs",
        "headers": "strmap",
        "response_headers": "strmap",
        "body": "str",
        "insecure": "bool",
        "timeout": "duration",
    },
    "file": {
        "path": "str!",
        "exists": "bool",
        "type": "filetype",
        "mode": "mode",
        "owner": "str",
        "group": "str",
        "contains": "strs",
        "not_contains": "strs",
    },
    "port": {"port": "int!", "listening": "bool", "protocol": "proto"},
    "service": {"name": "str!", "active": "bool", "enabled": "bool"},
    "package": {"name": "str!", "installed": "bool", "version": "version"},
    "process": {"name": "str!", "running": "bool"},
}
DEFAULT_TIMEOUT = 30.0
MAX_DURATION = 86400.0  # a step's timeout, retry interval or `eventually`: a day is already absurd
# Names every plan can use without defining them.
BUILTIN_VARS = ("server", "plan")
# Alias bombs ("billion laughs") expand exponentially when converted; a real plan
# has a few hundred nodes.
MAX_NODES = 200_000
# Steps run one after the other, each audited: a plan of more is a mistake (or a generator gone wrong).
MAX_STEPS = 1000

_SAFE_TAGS = {
    "tag:yaml.org,2002:" + t
    for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp", "merge")
}
_VERSION_SPEC = re.compile(r"\s*(>=|<=|==|!=|>|<|=)?\s*([A-Za-z0-9][A-Za-z0-9.+~:_-]*)\s*")

Path_: TypeAlias = tuple[str | int, ...]  # a path into the document: ("steps", 0, "expect", "stdout")
# What a plan's `vars` (and `--var`) may hold.
VarValue: TypeAlias = str | int | float | bool


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        if self.line <= 0:  # about the file as a whole (it could not be read)
            return f"{self.file}: {self.message}"
        return f"{self.file}:{self.line}:{self.col}: {self.message}"

    def to_dict(self) -> dict[str, str | int]:
        return {"file": self.file, "line": self.line, "col": self.col, "message": self.message}


class PlanInvalid(InvalidInput):
    code = "invalid_plan"

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        n = len(problems)
        first = str(problems[0]) if problems else "invalid plan"
        more = f" (and {n - 1} more problem{'s' if n > 2 else ''})" if n > 1 else ""
        super().__init__(first + more, data={"problems": [p.to_dict() for p in problems]})


@dataclass
class Step:
    index: int  # 1-based, as people count
    name: str
    kind: str
    spec: JSON  # run: the command string; other kinds: their mapping
    line: int = 0
    expect: JSONObject = field(default_factory=dict)  # run only: exit, stdout, stderr
    capture: dict[str, str] = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT
    retry_attempts: int = 1
    retry_interval: float = 1.0
    eventually: float | None = None
    sudo: bool = False
    skip: str | None = None  # the reason when skipped


@dataclass
class Plan:
    name: str
    path: str
    steps: list[Step]
    description: str = ""
    servers: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    vars: dict[str, VarValue] = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT
    fail_fast: bool = False
    # where each server name was written, so an unknown server is reported at its place
    server_marks: dict[str, tuple[int, int]] = field(default_factory=dict)
    tag_marks: dict[str, tuple[int, int]] = field(default_factory=dict)


def parse_duration(value: object) -> float:
    """`30s`, `2m`, `1m30s`, `500ms`, `1h`, or a bare number of seconds: finite, > 0 and at
    most a day (YAML's `.inf` and `.nan` are numbers too); ValueError otherwise."""
    import math

    from vpsagent import durations

    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValueError(f"bad duration {value!r}: use e.g. 30s, 2m, 1m30s, 500ms")
    try:
        seconds = durations.parse(value)
    except InvalidInput:
        raise ValueError(f"bad duration {value!r}: use e.g. 30s, 2m, 1m30s, 500ms") from None
    if not math.isfinite(seconds):
        raise ValueError(f"bad duration {value!r}: must be a finite number of seconds")
    if seconds <= 0:
        raise ValueError(f"bad duration {value!r}: must be more than zero")
    if seconds > MAX_DURATION:
        raise ValueError(f"bad duration {value!r}: at most 1d")
    return seconds


def parse_version_spec(text: str) -> tuple[str, str]:
    m = _VERSION_SPEC.fullmatch(text)
    if not m:
        raise ValueError(f"bad version constraint {text!r}: use e.g. '>=1.18' or '1.18.0-1'")
    return (m.group(1) or "=="), m.group(2)


# ---------------------------------------------------------------------------
# YAML → plain data + positions


class _Doc:
    def __init__(self, file: str):
        self.file = file
        self.pos: dict[Path_, tuple[int, int]] = {}
        self.kpos: dict[Path_, tuple[int, int]] = {}
        self.problems: list[Problem] = []
        self.nodes = 0
        self.bad_tags: set[Path_] = set()  # already reported; do not pile on "got nothing"

    def add(self, path: Path_, message: str, *, key: bool = False) -> None:
        where = None
        if key:
            where = self.kpos.get(path)
        p = path
        while where is None:
            where = self.pos.get(p) or self.kpos.get(p)
            if not p:
                break
            p = p[:-1]
        line, col = where or (1, 1)
        self.problems.append(Problem(self.file, line, col, message))


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _convert(doc: _Doc, loader: yaml.SafeLoader, node: yaml.Node, path: Path_) -> JSON:
    import yaml

    doc.nodes += 1
    if doc.nodes > MAX_NODES:
        raise _TooBig()
    doc.pos[path] = _mark(node)
    if node.tag not in _SAFE_TAGS:
        doc.bad_tags.add(path)
        doc.add(path, f"tag {node.tag.replace('tag:yaml.org,2002:', '!!')} is not allowed: "
                      "plans load with safe YAML only")
        return None
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves `<<` merge keys the safe way
        out: JSONObject = {}
        for knode, vnode in node.value:
            if not isinstance(knode, yaml.ScalarNode) or knode.tag not in _SAFE_TAGS:
                doc.pos[path + ("?",)] = _mark(knode)
                doc.add(path + ("?",), "mapping keys must be plain scalars")
                continue
            key = loader.construct_object(knode)
            if not isinstance(key, str):
                key = str(key) if key is not None else "null"
            if key in out:
                doc.kpos[path + (key + "#dup",)] = _mark(knode)
                doc.add(path + (key + "#dup",), f"duplicate key {key!r}", key=True)
                continue
            doc.kpos[path + (key,)] = _mark(knode)
            out[key] = _convert(doc, loader, vnode, path + (key,))
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(doc, loader, v, path + (i,)) for i, v in enumerate(node.value)]
    if path and path[-1] == "mode" and node.tag == "tag:yaml.org,2002:int":
        # a file mode as written: `mode: 644` and `mode: 0644` both mean octal, as for chmod
        # (YAML alone would read 644 as decimal and 0644 as 420)
        return node.value
    try:
        value: JSON = loader.construct_object(node, deep=True)
    except yaml.YAMLError as e:
        doc.add(path, f"bad value: {getattr(e, 'problem', None) or e}")
        return None
    if isinstance(value, str) and "\x00" in value:
        # "\0" in a double-quoted string: no command, path or pattern can carry one
        doc.add(path, "a NUL character (\\0) cannot be part of a command, a path or a pattern")
        return None
    return value


class _TooBig(Exception):
    pass


def _load(text: str, doc: _Doc) -> JSON:
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            msg = " ".join(str(x) for x in (e.context, e.problem) if x) or "YAML syntax error"
            doc.problems.append(Problem(doc.file, line, col, f"YAML syntax error: {msg}"))
            return None
        except yaml.YAMLError as e:
            doc.problems.append(Problem(doc.file, 1, 1, f"YAML error: {e}"))
            return None
        if node is None:
            doc.problems.append(Problem(doc.file, 1, 1, "the plan is empty"))
            return None
        try:
            return _convert(doc, loader, node, ())
        except _TooBig:
            doc.problems.append(Problem(doc.file, 1, 1, "the plan is too large (alias expansion?)"))
            return None
    finally:
        loader.dispose()


# ---------------------------------------------------------------------------
# validation


def _derive_name(kind: str, spec: JSON) -> str:
    if kind == "run":
        text = " ".join(str(spec).split())
        return text if len(text) <= 60 else text[:57] + "..."
    if not isinstance(spec, dict):
        return kind
    if kind == "http":
        return f"http {spec.get('method', 'GET')} {spec.get('url', '')}".strip()
    key = {"file": "path", "port": "port"}.get(kind, "name")
    return f"{kind} {spec.get(key, '')}".strip()


# Value types: what each type tag of KIND_KEYS accepts. A rule reports through `_Report`
# and returns the value as the step will use it (a number given for a string becomes
# the string, a duration becomes seconds).
_Report: TypeAlias = Callable[[Path_, str], None]
_ValueRule: TypeAlias = Callable[[JSON, Path_, str, _Report], JSON]

# Tags whose value is text anyway: a `{{ var }}` in it is checked now, not after rendering.
_TEXT_TAGS = ("str", "str!", "strs")


def _scalar(value: JSON) -> bool:
    """A string or a number (YAML reads `8080` as a number); never a boolean."""
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _whole(value: JSON) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _strings(value: JSON) -> bool:
    if isinstance(value, list):
        return all(isinstance(v, str) for v in value) and bool(value)
    return isinstance(value, str)


def _wholes(value: JSON) -> bool:
    vals = value if isinstance(value, list) else [value]
    return bool(vals) and all(_whole(v) for v in vals)


def _strmap(value: JSON) -> bool:
    return isinstance(value, dict) and all(_scalar(v) for v in value.values())


def _boolean(value: JSON) -> bool:
    return isinstance(value, bool)


# tag -> the shape its value must have; anything else is "expected <_TYPE_NAMES[tag]>"
_SHAPES: dict[str, Callable[[JSON], bool]] = {
    "str": _scalar,
    "str!": _scalar,
    "strs": _strings,
    "int": _whole,
    "int!": _whole,
    "ints": _wholes,
    "bool": _boolean,
    "strmap": _strmap,
    "version": _scalar,
}


def _text(value: JSON, path: Path_, label: str, report: _Report) -> JSON:
    return str(value)


def _required_text(value: JSON, path: Path_, label: str, report: _Report) -> JSON:
    if str(value).strip() == "":
        report(path, f"{label} must not be empty")
        return value
    return str(value)


def _port_number(value: JSON, path: Path_, label: str, report: _Report) -> JSON:
    if label.endswith("port") and not 0 < value < 65536:
        report(path, f"port must be 1-65535, not {value}")
    return value


def _version(value: JSON, path: Path_, label: str, report: _Report) -> JSON:
    try:
        parse_version_spec(str(value))
    except ValueError as e:
        report(path, str(e))
    return str(value)


# tag -> what is checked once the shape is right
_REFINE: dict[str, _ValueRule] = {
    "str": _text,
    "str!": _required_text,
    "int": _port_number,
    "int!": _port_number,
    "version": _version,
}


def _duration(value: JSON, path: Path_, label: str, report: _Report) -> JSON:
    try:
        return parse_duration(value)
    except ValueError as e:
        report(path, str(e))
        return None


def _mode(value: JSON, path: Path_, label: str, report: _Report) -> JSON:
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML reads 0644 unquoted as octal 420: accept it and show it as written
        value = format(value, "04o")
    if not (isinstance(value, str) and re.fullmatch(r"0?[0-7]{3,4}", value)):
        report(path, f"mode must be an octal string like \"0644\", not {value!r}")
        return value
    return value.zfill(4)


# tag -> a rule that says itself what is wrong (no generic "expected ..." message)
_OWN_RULES: dict[str, _ValueRule] = {"duration": _duration, "mode": _mode}

# tag -> the words it accepts, and how a wrong one is reported
_CHOICES: dict[str, tuple[tuple[str, ...], str]] = {
    "from": (("server", "local"), "from must be 'server' or 'local'"),
    "filetype": (("file", "directory", "symlink"), "type must be file, directory or symlink"),
    "proto": (("tcp", "udp"), "protocol must be tcp or udp"),
}


@dataclass
class _StepDraft:
    """A step while its options are checked: the mapping as written and the Step so far."""

    raw: JSONObject
    path: Path_
    label: str
    step: Step


class _Validator:
    def __init__(self, doc: _Doc, overrides: Mapping[str, object]):
        self.doc = doc
        self.overrides = overrides

    def err(self, path: Path_, msg: str, key: bool = False) -> None:
        # a value whose tag was refused is already reported; do not pile on "got nothing"
        if any(path[:i] in self.doc.bad_tags for i in range(len(path) + 1)):
            return
        self.doc.add(path, msg, key=key)

    def unknown_keys(self, data: JSONObject, allowed: Sequence[str], path: Path_, where: str) -> None:
        for k in data:
            if k not in allowed:
                self.err(path + (k,), f"unknown key {k!r} in {where} "
                         f"(allowed: {', '.join(allowed)})", key=True)

    # value checks ----------------------------------------------------------
    def check_value(self, value: JSON, kind: str, path: Path_, label: str) -> JSON:
        """Type-check one value; templated strings are checked after rendering."""
        if templating.has_template(value) and kind not in _TEXT_TAGS:
            return value
        if kind in _CHOICES:
            allowed, rule = _CHOICES[kind]
            if value not in allowed:
                self.err(path, f"{rule}, not {value!r}")
            return value
        own = _OWN_RULES.get(kind)
        if own is not None:
            return own(value, path, label, self.err)
        shape = _SHAPES.get(kind)
        if shape is not None and not shape(value):
            self.err(path, f"{label}: expected {_TYPE_NAMES.get(kind, kind)}, "
                           f"got {_describe(value)}")
            return value
        refine = _REFINE.get(kind)
        return refine(value, path, label, self.err) if refine is not None else value

    def check_regex(self, value: JSON, path: Path_, label: str) -> None:
        if not isinstance(value, str):
            self.err(path, f"{label}: expected a regular expression string, got {_describe(value)}")
            return
        if templating.has_template(value):
            return
        try:
            re.compile(value)
        except re.error as e:
            self.err(path, f"bad regex {value!r} in {label}: {e}")

    def check_matcher(self, value: JSON, path: Path_, label: str) -> JSONObject | None:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return {"contains": str(value)}
        if not isinstance(value, dict):
            self.err(path, f"{label}: expected a string or a matcher map, got {_describe(value)}")
            return None
        if not value:
            self.err(path, f"{label}: empty matcher (use {', '.join(MATCHER_KEYS)})")
        self.unknown_keys(value, MATCHER_KEYS, path, label)
        out: JSONObject = {}
        for k, v in value.items():
            if k not in MATCHER_KEYS:
                continue
            sub = path + (k,)
            if k in ("contains", "not_contains"):
                if isinstance(v, int | float) and not isinstance(v, bool):
                    v = str(v)
                out[k] = self.check_value(v, "strs", sub, f"{label}.{k}")
            elif k == "equals":
                if isinstance(v, int | float) and not isinstance(v, bool):
                    v = str(v)
                out[k] = self.check_value(v, "str", sub, f"{label}.{k}")
            elif k == "matches":
                self.check_regex(v, sub, f"{label}.matches")
                out[k] = v
            else:
                if not templating.has_template(v) and (
                    isinstance(v, bool) or not isinstance(v, int | float)
                ):
                    self.err(sub, f"{label}.{k}: expected a number, got {_describe(v)}")
                out[k] = v
        return out

    # the plan ----------------------------------------------------------------
    def plan(self, data: JSON, path: str) -> Plan | None:
        if () in self.doc.bad_tags:
            return None
        if not isinstance(data, dict):
            self.err((), f"a plan is a mapping with name and steps, got {_describe(data)}")
            return None
        self.unknown_keys(data, PLAN_KEYS, (), "the plan")
        name = data.get("name")
        if "name" not in data:
            self.err((), "missing required key 'name'")
        elif not isinstance(name, str) or not name.strip():
            self.err(("name",), f"name: expected a non-empty string, got {_describe(name)}")
        description = data.get("description", "")
        if description is not None and not isinstance(description, str):
            self.err(("description",), "description: expected a string")
        servers = self.names_list(data.get("servers"), ("servers",), "servers")
        tags = self.names_list(data.get("tags"), ("tags",), "tags")
        vars_ = self.plan_vars(data.get("vars"))
        timeout = DEFAULT_TIMEOUT
        if "timeout" in data:
            timeout = self.check_value(data["timeout"], "duration", ("timeout",), "timeout")
            timeout = timeout or DEFAULT_TIMEOUT
        fail_fast = data.get("fail_fast", False)
        if not isinstance(fail_fast, bool):
            self.err(("fail_fast",), "fail_fast: expected true or false")
            fail_fast = False
        defined = set(BUILTIN_VARS) | set(vars_) | set(self.overrides)
        return Plan(
            name=name if isinstance(name, str) else "",
            path=path,
            steps=self.plan_steps(data, timeout, defined),
            description=description if isinstance(description, str) else "",
            servers=servers,
            tags=tags,
            vars=vars_,
            timeout=timeout,
            fail_fast=fail_fast,
            server_marks=self.marks("servers", servers),
            tag_marks=self.marks("tags", tags),
        )

    def names_list(self, value: JSON, path: Path_, label: str) -> list[str]:
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and all(isinstance(v, str) and v for v in value):
            return list(value)
        self.err(path, f"{label}: expected a list of names, got {_describe(value)}")
        return []

    def marks(self, key: str, names: list[str]) -> dict[str, tuple[int, int]]:
        """Where each of `servers` or `tags` was written, so an unknown one is reported there."""
        return {
            n: self.doc.pos.get((key, i), self.doc.pos.get((key,), (1, 1)))
            for i, n in enumerate(names)
        }

    def plan_vars(self, raw_vars: JSON) -> dict[str, VarValue]:
        vars_: dict[str, VarValue] = {}
        if raw_vars is None:
            return vars_
        if not isinstance(raw_vars, dict):
            self.err(("vars",), f"vars: expected a mapping, got {_describe(raw_vars)}")
            return vars_
        for k, v in raw_vars.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k):
                self.err(("vars", k), f"bad variable name {k!r}", key=True)
            elif v is not None and not isinstance(v, str | int | float | bool):
                self.err(("vars", k), f"vars.{k}: expected a string, number or boolean")
            else:
                vars_[k] = "" if v is None else v
        return vars_

    def plan_steps(self, data: JSONObject, timeout: float, defined: set[str]) -> list[Step]:
        raw_steps = data.get("steps")
        if "steps" not in data:
            self.err((), "missing required key 'steps'")
            return []
        if not isinstance(raw_steps, list):
            self.err(("steps",), f"steps: expected a list of steps, got {_describe(raw_steps)}")
            return []
        if not raw_steps:
            self.err(("steps",), "steps is empty: a plan needs at least one step")
            return []
        if len(raw_steps) > MAX_STEPS:
            self.err(("steps",), f"{len(raw_steps)} steps is more than the {MAX_STEPS} a plan may have: split it")
            return []
        steps: list[Step] = []
        for i, raw in enumerate(raw_steps):
            step = self.step(raw, i, timeout, defined)
            if step is not None:
                steps.append(step)
        return steps

    # one step: its kind, the kind's value, the options, then run's extras ------------
    def step(self, raw: JSON, i: int, plan_timeout: float, defined: set[str]) -> Step | None:
        path: Path_ = ("steps", i)
        label = f"step {i + 1}"
        if path in self.doc.bad_tags:
            return None
        if not isinstance(raw, dict):
            self.err(path, f"{label}: expected a mapping with one of {', '.join(KINDS)}, "
                           f"got {_describe(raw)}")
            return None
        if isinstance(raw.get("name"), str):
            label = f"step {i + 1} ({raw['name']!r})"
        kind = self.step_kind(raw, path, label)
        if kind is None:
            return None
        spec = self.step_spec(kind, raw[kind], path + (kind,), label)
        name = raw.get("name")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            self.err(path + ("name",), f"{label}: name must be a non-empty string")
            name = None
        step = Step(
            index=i + 1,
            name=name or _derive_name(kind, spec),
            kind=kind,
            spec=spec,
            line=self.doc.pos.get(path, (0, 0))[0],
            timeout=plan_timeout,
        )
        draft = _StepDraft(raw, path, label, step)
        for key, check_option in _STEP_OPTIONS:
            if key in raw:
                check_option(self, draft, raw[key])
        # http's own timeout is the request's, and the step's too (it wins over `timeout`)
        if kind == "http" and isinstance(spec, dict) and isinstance(spec.get("timeout"), float):
            step.timeout = spec["timeout"]
        if kind == "run":
            self.run_extras(raw, path, label, step)
        # every string may use {{ var }}: check they are all defined at this point
        self.check_refs(raw, path, label, defined)
        defined.update(step.capture)
        return step

    def step_kind(self, raw: JSONObject, path: Path_, label: str) -> str | None:
        """The step's one kind key (run, http, ...), or None when it has none or several."""
        kinds = [k for k in KINDS if k in raw]
        if not kinds:
            self.err(path, f"{label} has no kind: give exactly one of {', '.join(KINDS)}")
            self.unknown_keys(raw, COMMON_STEP_KEYS + RUN_ONLY_KEYS, path, label)
            return None
        if len(kinds) > 1:
            self.err(path + (kinds[1],), f"{label} has {len(kinds)} kinds "
                     f"({', '.join(kinds)}): give exactly one", key=True)
            return None
        kind = kinds[0]
        allowed = COMMON_STEP_KEYS + (kind,) + (RUN_ONLY_KEYS if kind == "run" else ())
        self.unknown_keys(raw, allowed, path, label)
        return kind

    def step_spec(self, kind: str, spec: JSON, kpath: Path_, label: str) -> JSON:
        """The kind's value as the step keeps it: run's command, or the checked mapping."""
        if kind == "run":
            if isinstance(spec, int | float) and not isinstance(spec, bool):
                spec = str(spec)
            if not isinstance(spec, str) or not spec.strip():
                self.err(kpath, f"{label}: run needs a command string, got {_describe(spec)}")
            return spec
        if not isinstance(spec, dict):
            self.err(kpath, f"{label}: {kind} needs a mapping, got {_describe(spec)}")
            return {}
        keys = KIND_KEYS[kind]
        self.unknown_keys(spec, tuple(keys), kpath, f"{kind}")
        for req in (k for k, t in keys.items() if t.endswith("!")):
            if req not in spec:
                self.err(kpath, f"{label}: {kind} needs {req!r}")
        checked = dict(spec)
        for k, t in keys.items():
            if k in checked:
                checked[k] = self.check_value(checked[k], t, kpath + (k,), f"{kind}.{k}")
        return checked

    # step options (_STEP_OPTIONS) ---------------------------------------------
    def opt_timeout(self, d: _StepDraft, value: JSON) -> None:
        seconds = self.check_value(value, "duration", d.path + ("timeout",), "timeout")
        d.step.timeout = seconds or d.step.timeout  # a bad one leaves the plan's

    def opt_retry(self, d: _StepDraft, r: JSON) -> None:
        rpath = d.path + ("retry",)
        if not isinstance(r, dict):
            self.err(rpath, "retry: expected {attempts: N, interval: 2s}")
            return
        self.unknown_keys(r, ("attempts", "interval"), rpath, "retry")
        att = r.get("attempts", 3)
        if isinstance(att, bool) or not isinstance(att, int) or att < 1:
            self.err(rpath + ("attempts",), f"retry.attempts: expected a whole number "
                     f"of at least 1, got {_describe(att)}")
        else:
            d.step.retry_attempts = att
        if "interval" in r:
            iv = self.check_value(r["interval"], "duration", rpath + ("interval",),
                                  "retry.interval")
            d.step.retry_interval = iv or 1.0

    def opt_eventually(self, d: _StepDraft, value: JSON) -> None:
        epath = d.path + ("eventually",)
        if "retry" in d.raw:
            self.err(epath, f"{d.label}: use retry or eventually, not both", key=True)
        d.step.eventually = self.check_value(value, "duration", epath, "eventually")
        if d.step.eventually:
            # poll often enough to notice soon, rarely enough not to hammer the server
            d.step.retry_interval = min(2.0, max(0.2, d.step.eventually / 10))

    def opt_sudo(self, d: _StepDraft, value: JSON) -> None:
        if not isinstance(value, bool):
            self.err(d.path + ("sudo",), "sudo: expected true or false")
        else:
            d.step.sudo = value

    def opt_skip(self, d: _StepDraft, s: JSON) -> None:
        if s is True:
            d.step.skip = "skipped by the plan"
        elif isinstance(s, str) and s.strip():
            d.step.skip = s
        elif s is not False and s is not None:
            self.err(d.path + ("skip",), "skip: expected true, false or a reason")

    def run_extras(self, raw: JSONObject, path: Path_, label: str, step: Step) -> None:
        if "expect" in raw:
            ex = raw["expect"]
            epath = path + ("expect",)
            if not isinstance(ex, dict):
                self.err(epath, f"{label}: expect must be a mapping of exit, stdout, stderr")
            else:
                self.unknown_keys(ex, EXPECT_KEYS, epath, "expect")
                if "exit" in ex:
                    step.expect["exit"] = self.check_value(ex["exit"], "ints", epath + ("exit",),
                                                           "expect.exit")
                for stream in ("stdout", "stderr"):
                    if stream in ex:
                        m = self.check_matcher(ex[stream], epath + (stream,), f"expect.{stream}")
                        if m is not None:
                            step.expect[stream] = m
        if "capture" in raw:
            cap = raw["capture"]
            cpath = path + ("capture",)
            if not isinstance(cap, dict) or not cap:
                self.err(cpath, "capture: expected {variable: 'regex with one (group)'}")
                return
            for var, rx in cap.items():
                if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", var):
                    self.err(cpath + (var,), f"bad variable name {var!r}", key=True)
                    continue
                self.check_regex(rx, cpath + (var,), f"capture.{var}")
                if isinstance(rx, str) and not templating.has_template(rx):
                    try:
                        if re.compile(rx).groups > 1:
                            self.err(cpath + (var,), f"capture.{var}: use at most one (group), "
                                                     "or (?:...) for the others")
                    except re.error:
                        pass
                step.capture[var] = rx if isinstance(rx, str) else ""

    def check_refs(self, value: JSON, path: Path_, label: str, defined: set[str]) -> None:
        if isinstance(value, str):
            if "{{" not in value:
                return
            try:
                names = templating.references(value)
            except templating.TemplateError as e:
                self.err(path, f"{label}: {e}")
                return
            for n in names:
                if n not in defined:
                    self.err(path, f"undefined variable {n!r} in {label} (define it in vars, "
                                   "with --var, VPSAGENT_VAR_<name>, or capture it in an "
                                   "earlier step)")
        elif isinstance(value, dict):
            for k, v in value.items():
                if k == "name" and path and path[0] == "steps" and len(path) == 2:
                    pass  # step names may use variables too
                self.check_refs(v, path + (k,), label, defined)
        elif isinstance(value, list):
            for j, v in enumerate(value):
                self.check_refs(v, path + (j,), label, defined)


# The step options in the order they are checked: `eventually` sets the poll interval
# after `retry` may have set it.
_STEP_OPTIONS: tuple[tuple[str, Callable[[_Validator, _StepDraft, JSON], None]], ...] = (
    ("timeout", _Validator.opt_timeout),
    ("retry", _Validator.opt_retry),
    ("eventually", _Validator.opt_eventually),
    ("sudo", _Validator.opt_sudo),
    ("skip", _Validator.opt_skip),
)


_TYPE_NAMES = {
    "str": "a string",
    "str!": "a string",
    "strs": "a string or a list of strings",
    "int": "a whole number",
    "int!": "a whole number",
    "ints": "a whole number or a list of them",
    "bool": "true or false",
    "strmap": "a mapping of names to strings",
    "version": "a version constraint like '>=1.18'",
}


def _describe(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


# ---------------------------------------------------------------------------
# public API


def validate_text(
    text: str, file: str, overrides: Mapping[str, object] | None = None
) -> tuple[Plan | None, list[Problem]]:
    """Parse and validate a plan; returns the plan (None when unusable) and ALL problems."""
    doc = _Doc(file)
    data = _load(text, doc)
    if doc.problems and data is None:
        return None, doc.problems
    plan = _Validator(doc, dict(overrides or {})).plan(data, file)
    problems = sorted(doc.problems, key=lambda p: (p.line, p.col))
    return (None if problems else plan), problems


def load_plan(path: str | Path, overrides: Mapping[str, object] | None = None, *,
              max_bytes: int = DEFAULT_MAX_BYTES) -> Plan:
    """Load and validate a plan file (a regular file of at most `max_bytes`); raises
    PlanInvalid with every problem."""
    try:
        raw = read_bounded(path, max_bytes)
    except OSError as e:
        raise PlanInvalid([Problem(str(path), 0, 0, f"cannot read the plan: {e.strerror}")]) from None
    except InvalidInput as e:  # a device, a FIFO, a file above the limit: refused before parsing
        raise PlanInvalid([Problem(str(path), 0, 0, e.line().removeprefix(f"{path}: "))]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise PlanInvalid([Problem(str(path), 1, 1, f"the plan is not UTF-8 text ({e.reason})")]) from None
    plan, problems = validate_text(text, str(path), overrides)
    if problems or plan is None:
        raise PlanInvalid(problems)
    return plan


# ---------------------------------------------------------------------------
# for other YAML formats that embed a plan (the deploy config's health check)

PositionedDoc = _Doc


def load_positioned(text: str, file: str) -> tuple[JSON, PositionedDoc]:
    """Safe YAML as plain data, with where each value was written (problems as file:line:col)."""
    doc = _Doc(file)
    return _load(text, doc), doc


def embedded_plan(doc: PositionedDoc, prefix: Path_, data: JSON, name: str) -> Plan | None:
    """Validate the plan written at `prefix` inside another document; problems go to `doc`
    at their places in that document."""
    sub = _Doc(doc.file)
    n = len(prefix)
    sub.pos = {k[n:]: v for k, v in doc.pos.items() if k[:n] == prefix}
    sub.kpos = {k[n:]: v for k, v in doc.kpos.items() if k[:n] == prefix}
    if isinstance(data, dict) and "name" not in data:
        data = {"name": name, **data}
    plan = _Validator(sub, {}).plan(data, doc.file)
    doc.problems += sub.problems
    return plan


def embedded_steps(doc: PositionedDoc, prefix: Path_, data: JSON, name: str) -> Plan | None:
    """Validate test-plan steps written at `prefix` inside another document (a change plan's
    `verify`): a list of steps, or one step; problems go to `doc` at their places."""
    sub = _Doc(doc.file)
    n = len(prefix)
    # one step written on its own is step 0 of the embedded plan
    head: Path_ = ("steps",) if isinstance(data, list) else ("steps", 0)
    sub.pos = {head + k[n:]: v for k, v in doc.pos.items() if k[:n] == prefix}
    sub.kpos = {head + k[n:]: v for k, v in doc.kpos.items() if k[:n] == prefix}
    steps = data if isinstance(data, list) else [data]
    plan = _Validator(sub, {}).plan({"name": name, "steps": steps}, doc.file)
    doc.problems += sub.problems
    return plan
