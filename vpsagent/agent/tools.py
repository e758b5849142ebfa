"""The agent's tools: their schemas (a public contract) and their implementations.

Tool names and input fields are referred to by policy files and stored transcripts, so
they do not change: `run_command {server, command, timeout_s?}`, `read_file {server,
path, max_bytes?}`, `write_file {server, path, content, mode?}`, `list_servers {}`.

Every call that touches a server goes: scope check → safety classification → policy
decision → (approval callback when the policy says ask) → audit log → host. A denial is
recorded and returned to the model as an `is_error` result with the reason. Nothing here
prints or prompts: the user is reached through `approve` and `on_event`.
"""

from __future__ import annotations

import difflib
import json
import math
import shlex
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar

from vpsagent import errors
from vpsagent.jsondata import JSON, JSONObject
from vpsagent.redact import DEFAULT_LIMIT, Redactor, bound

if TYPE_CHECKING:
    from vpsagent.db.audit import AuditLog
    from vpsagent.db.inventory import ServerRecord
    from vpsagent.remote.base import CommandResult, Host, OutputCallback
    from vpsagent.remote.sandbox import Sandbox
    from vpsagent.safety.classify import Classification
    from vpsagent.safety.policy import Mode, Policy
    from vpsagent.safety.scripts import ScriptSource, WrittenFiles

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 120.0
MAX_TIMEOUT_S = 3600.0
DEFAULT_READ_BYTES = 64 * 1024
MAX_READ_BYTES = 4 * 1024 * 1024

TOOL_SCHEMAS: list[JSONObject] = [
    {
        "name": "run_command",
        "description": (
            "Run one shell command on a registered server and get its exit code, stdout, "
            "stderr (each cut to a bounded size, secrets redacted) and duration. Read-only "
            "commands run at once; commands that change the server need the user's approval "
            "and may be denied."
        ),
        "input_schema": {
            "type": "object",
            "properties": {
                "server": {"type": "string", "description": "Name of a registered server in scope."},
                "command": {"type": "string", "description": "Shell command, run by the login shell."},
                "timeout_s": {"type": "number", "description": "Seconds before the command is stopped (default 120)."},
            },
            "required": ["server", "command"],
        },
    },
    {
        "name": "read_file",
        "description": "Read a file on a registered server (bounded, secrets redacted).",
        "input_schema": {
            "type": "object",
            "properties": {
                "server": {"type": "string", "description": "Name of a registered server in scope."},
                "path": {"type": "string", "description": "Absolute path of the file."},
                "max_bytes": {"type": "integer", "description": "Read at most this many bytes (default 65536)."},
            },
            "required": ["server", "path"],
        },
    },
    {
        "name": "write_file",
        "description": (
            "Write a file on a registered server. The old file is backed up next to it, the user "
            "sees a diff and must approve."
        ),
        "input_schema": {
            "type": "object",
            "properties": {
                "server": {"type": "string", "description": "Name of a registered server in scope."},
                "path": {"type": "string", "description": "Absolute path of the file."},
                "content": {"type": "string", "description": "The complete new content of the file."},
                "mode": {"type": "string", "description": "Octal permissions such as \"0644\" (optional)."},
            },
            "required": ["server", "path", "content"],
        },
    },
    {
        "name": "list_servers",
        "description": "List the servers in scope for this conversation: name, kind, address, user, tags.",
        "input_schema": {"type": "object", "properties": {}},
    },
]

TOOL_NAMES = frozenset(t["name"] for t in TOOL_SCHEMAS)


def tool_definitions(*, cache: bool = True) -> list[JSONObject]:
    """The tool list sent to the model; the last one carries the prompt-cache breakpoint."""
    tools = [dict(t) for t in TOOL_SCHEMAS]
    if cache:
        tools[-1]["cache_control"] = {"type": "ephemeral"}
    return tools


@dataclass
class ToolCall:
    """One tool call as the user sees it (and as `approve` receives it)."""

    id: str
    name: str
    input: JSONObject
    server: str | None = None
    command: str | None = None  # what runs (for write_file/read_file a readable stand-in)
    risk: str | None = None  # read-only | change | unknown | destructive (outcomes.Risk)
    reasons: list[str] = field(default_factory=list)
    policy_decision: str | None = None  # allow | ask | deny (before approval)
    policy_reason: str | None = None
    diff: str | None = None  # write_file: unified diff of old → new
    decision: str | None = None  # final: allow | deny | invalid | dry_run
    cause: str | None = None  # why it did not run (outcomes.DenyCause), when decision is deny


@dataclass
class ToolOutcome:
    """What happened, and the tool_result content the model gets."""

    call: ToolCall
    content: str
    is_error: bool = False
    executed: bool = False
    denied: bool = False  # the gate or the user said no
    interrupted: bool = False  # the user stopped it (Ctrl-C) while it ran
    exit_code: int | None = None
    duration_s: float = 0.0
    unreachable: str | None = None  # the server could not be reached: why (errors.Unreachable's line)

    def tool_result_block(self) -> JSONObject:
        block: JSONObject = {"type": "tool_result", "tool_use_id": self.call.id, "content": self.content}
        if self.is_error:
            block["is_error"] = True
        return block

    def summary(self) -> JSONObject:
        """For --json and transcripts: never holds output, only what was decided and how it ended."""
        return {
            "id": self.call.id,
            "tool": self.call.name,
            "server": self.call.server,
            "command": self.call.command,
            "risk": self.call.risk,
            "decision": self.call.decision,
            "reason": self.call.policy_reason,
            "cause": self.call.cause,
            "executed": self.executed,
            "exit_code": self.exit_code,
            "duration_s": round(self.duration_s, 3),
            "is_error": self.is_error,
            "unreachable": self.unreachable,
        }


@dataclass
class ToolEvent:
    """Streamed to `on_event` while a tool runs: kind is call | output | result."""

    kind: str
    call: ToolCall
    stream: str | None = None  # output: stdout | stderr
    data: bytes = b""
    outcome: ToolOutcome | None = None


# A tool the calling service adds for one conversation (`ask --plan`'s submit_plan): its
# schema for the model, and a handler that gets the input and returns (content, is_error).
# It touches no server: what it does is the service's business (check and keep a plan).
@dataclass(frozen=True)
class ExtraTool:
    schema: JSONObject
    handle: Callable[[JSONObject], tuple[str, bool]]

    @property
    def name(self) -> str:
        return str(self.schema["name"])


# The user's answer: a Decision (outcomes.Decision; safety.policy.Decision has the same
# values). Both are StrEnums, so `str` is the type they share; ALLOW runs the call.
ApproveFn = Callable[[ToolCall], str]


class Runner(Protocol):
    """How the tools reach servers: pooled hosts and the audited run (services.fleet.Fleet)."""

    audit: AuditLog

    def host(self, name: str) -> Host: ...

    def run(self, name: str, command: str, *, source: str, conversation_id: int | None = None,
            decision: str | None = None, decision_reason: str | None = None, timeout: float | None = None,
            on_stdout: OutputCallback | None = None, on_stderr: OutputCallback | None = None,
            capture: int = ..., sandbox: Sandbox = ...) -> CommandResult: ...

    def sandbox(self, name: str, *, conversation_id: int | None = None) -> Sandbox: ...

    def operation(self, name: str, label: str, op: Callable[[], T], *, source: str,
                  size: Callable[[T], int] = ..., conversation_id: int | None = None,
                  decision: str | None = None, decision_reason: str | None = None) -> T: ...


@dataclass
class ToolEnv:
    """Everything the tools need, injected by the service."""

    scope: Mapping[str, ServerRecord]  # servers this conversation may use
    runner: Runner
    policy: Policy
    mode: Mode
    redactor: Redactor
    approve: ApproveFn | None = None  # None: nobody to ask, so an "ask" is a denial
    on_event: Callable[[ToolEvent], None] | None = None
    dry_run: bool = False
    conversation_id: int | None = None
    output_limit: int = DEFAULT_LIMIT
    source: str = "ask"  # how the audit log names what ran these commands
    # Files this conversation wrote, per server: running one is judged by what was written.
    written: dict[str, WrittenFiles] = field(default_factory=dict)
    # Servers already told about (no read-only sandbox), and what was told: once per server.
    notices: list[str] = field(default_factory=list)
    unsandboxed: set[str] = field(default_factory=set)
    extra: Mapping[str, ExtraTool] = field(default_factory=dict)  # the service's own tools, by name

    def emit(self, ev: ToolEvent) -> None:
        if self.on_event is not None:
            self.on_event(ev)

    def host(self, name: str) -> Host:
        return self.runner.host(name)


# --------------------------------------------------------------------------- dispatch


def execute(env: ToolEnv, block_id: str, name: str, input: JSON) -> ToolOutcome:
    """Run one tool_use block. Never raises for anything the model can cause."""
    call = ToolCall(id=block_id, name=name, input=input if isinstance(input, dict) else {})
    if name not in TOOL_NAMES and name not in env.extra:
        names = sorted([*TOOL_NAMES, *env.extra])
        return _invalid(env, call, f"unknown tool {name!r}; tools: {', '.join(names)}")
    if not isinstance(input, dict):
        return _invalid(env, call, "tool input must be a JSON object")
    if name in env.extra:
        return _extra(env, call, env.extra[name])
    if name == "list_servers":
        return _list_servers(env, call)
    server = input.get("server")
    call.server = server if isinstance(server, str) else None
    if not isinstance(server, str) or server not in env.scope:
        in_scope = ", ".join(sorted(env.scope)) or "(none)"
        return _invalid(env, call, f"unknown server {server!r}: not a registered server in scope; servers in scope: {in_scope}")
    problem = schema_problem(name, input)
    if problem is not None:
        return _invalid(env, call, problem)
    try:
        if name == "run_command":
            return _run_command(env, call)
        if name == "read_file":
            return _read_file(env, call)
        return _write_file(env, call)
    except errors.Unreachable as exc:
        outcome = ToolOutcome(call, f"error: server {server} unreachable: {exc.message}", is_error=True,
                              unreachable=exc.message)
        env.emit(ToolEvent("result", call, outcome=outcome))
        return outcome


# JSON Schema's types as Python sees a parsed document (bool is an int to Python, not here)
_JSON_TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "number": (int, float), "integer": (int,),
                                           "boolean": (bool,), "object": (dict,), "array": (list,)}
_SCHEMAS = {t["name"]: t["input_schema"] for t in TOOL_SCHEMAS}


def schema_problem(name: str, given: JSONObject) -> str | None:
    """What is wrong with a tool's input against its input_schema (required keys, types),
    said so the model can correct the call; None when it fits. The schema is the one the
    model was given: a `timeout_s: "abc"` is an error result, never a silent default."""
    schema = _SCHEMAS[name]
    props: JSONObject = schema.get("properties") or {}
    missing = [k for k in schema.get("required") or [] if k not in given]
    if missing:
        return f"{name}: missing required {', '.join(repr(k) for k in missing)}"
    for key, value in given.items():
        spec = props.get(key)
        if not isinstance(spec, dict):
            continue  # not in the schema: ignored, as JSON Schema allows
        kind = str(spec.get("type"))
        ok = isinstance(value, _JSON_TYPES.get(kind, (object,))) and not (isinstance(value, bool) and kind != "boolean")
        if ok and kind == "number" and not math.isfinite(value):
            ok = False
        if not ok:
            return f"{name}: {key} must be {'an' if kind[0] in 'aeiou' else 'a'} {kind}, got {json.dumps(value)[:80]}"
    return None


def _invalid(env: ToolEnv, call: ToolCall, message: str) -> ToolOutcome:
    call.decision = "invalid"
    outcome = ToolOutcome(call, f"error: {message}", is_error=True)
    env.emit(ToolEvent("call", call))
    env.emit(ToolEvent("result", call, outcome=outcome))
    return outcome


def _extra(env: ToolEnv, call: ToolCall, tool: ExtraTool) -> ToolOutcome:
    call.decision = "allow"
    call.command = tool.name
    env.emit(ToolEvent("call", call))
    content, is_error = tool.handle(call.input)
    outcome = ToolOutcome(call, content, is_error=is_error, executed=not is_error)
    env.emit(ToolEvent("result", call, outcome=outcome))
    return outcome


def _list_servers(env: ToolEnv, call: ToolCall) -> ToolOutcome:
    call.decision = "allow"
    rows = [
        {"name": r.name, "kind": "local" if r.is_local else "ssh", "address": r.host, "port": r.port,
         "user": r.user or "", "tags": list(r.tags)}
        for r in env.scope.values()
    ]
    outcome = ToolOutcome(call, json.dumps(rows, indent=1), executed=True)
    env.emit(ToolEvent("call", call))
    env.emit(ToolEvent("result", call, outcome=outcome))
    return outcome


# --------------------------------------------------------------------------- the gate


def _gate(env: ToolEnv, call: ToolCall, cls: Classification) -> bool:
    """Apply the policy (and, for "ask", the approval callback). True means: run it.

    Only `env.approve` can turn an "ask" into an allow; nothing the model or a server
    says is consulted.
    """
    from vpsagent.outcomes import DenyCause
    from vpsagent.safety.policy import Decision, decide

    call.risk = cls.risk.value  # "read-only" | "change" | "unknown" | "destructive", as the docs spell it
    call.reasons = list(getattr(cls, "reasons", []) or [])
    info = env.scope[call.server or ""]
    verdict = decide(env.policy, cls, server=call.server or "", tags=tuple(info.tags), mode=env.mode)
    call.policy_decision = _dname(verdict.decision)
    call.policy_reason = verdict.reason
    call.cause = verdict.cause.value if verdict.cause is not None else None
    if env.dry_run:
        call.decision = "dry_run"
        env.emit(ToolEvent("call", call))
        return False
    decision = verdict.decision
    if decision == Decision.ASK:
        if env.approve is None:
            decision = Decision.DENY
            call.cause = DenyCause.NO_APPROVER.value
            rerun = ("rerun on a terminal or allow this exact command in the policy" if call.risk == "unknown"
                     else "rerun on a terminal, with --yes, or add an allow rule to the policy")
            call.policy_reason = (
                f"{verdict.reason.rstrip('.')}; it needs approval and nobody can give it here (no terminal, or --json): "
                f"{rerun}"
            )
        else:
            decision = Decision.ALLOW if env.approve(call) == Decision.ALLOW else Decision.DENY
            call.cause = None if decision == Decision.ALLOW else DenyCause.DECLINED.value
            call.policy_reason = (f"{verdict.reason.rstrip('.')}; "
                                  f"{'approved' if decision == Decision.ALLOW else 'declined'} by the user")
    call.decision = _dname(decision)
    env.emit(ToolEvent("call", call))
    if decision == Decision.ALLOW:
        return True
    env.runner.audit.record_decision(
        server=call.server or "", command=call.command or "", source=env.source,
        conversation_id=env.conversation_id, decision="deny", reason=call.policy_reason,
        rule=getattr(verdict, "rule", None),
    )
    return False


def _dname(d: object) -> str:
    return str(getattr(d, "value", d)).lower()


def _denied(env: ToolEnv, call: ToolCall) -> ToolOutcome:
    if env.dry_run:
        text = f"dry-run: not executed. The policy would {call.policy_decision} this ({call.policy_reason})."
        outcome = ToolOutcome(call, text, is_error=False)
    else:
        text = f"denied: {call.policy_reason}. The command was not run. Do not try to get around this; explain to the user what you wanted to do and why."
        outcome = ToolOutcome(call, text, is_error=True, denied=True)
    env.emit(ToolEvent("result", call, outcome=outcome))
    return outcome


# --------------------------------------------------------------------------- run_command


def _number(v: object, default: float, lo: float, hi: float) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return default
    return min(hi, max(lo, float(v)))


def _run_command(env: ToolEnv, call: ToolCall) -> ToolOutcome:
    from vpsagent.safety.classify import classify

    command = call.input.get("command")
    if not isinstance(command, str) or not command.strip():
        return _invalid(env, call, "command must be a non-empty string")
    call.command = command
    timeout = _number(call.input.get("timeout_s"), DEFAULT_TIMEOUT_S, 1.0, MAX_TIMEOUT_S)
    # scripts it runs are judged by their content: written here, or read from the server
    if not _gate(env, call, classify(command, scripts=_scripts(env, call.server or ""))):
        return _denied(env, call)
    sandbox = _read_only_view(env, call)
    if sandbox is None:
        return _denied(env, call)
    host = env.host(call.server or "")
    result = _run_audited(env, host, command, timeout=timeout, call=call, sandbox=sandbox)
    outcome = ToolOutcome(
        call,
        format_command_result(result, env.redactor, env.output_limit),
        is_error=not result.ok,
        executed=True,
        exit_code=result.exit_code,
        duration_s=result.duration_s,
        interrupted=result.status == "interrupted",
    )
    env.emit(ToolEvent("result", call, outcome=outcome))
    return outcome


def _redact_bytes(env: ToolEnv, chunk: bytes) -> bytes:
    return env.redactor.redact(chunk.decode("utf-8", "replace")).encode()


def _run_audited(env: ToolEnv, host: Host, command: str, *, timeout: float, call: ToolCall,
                 sandbox: Sandbox) -> CommandResult:
    # The live echo goes to the user's stderr, often a CI log: redact it like the model's
    # copy. (Per chunk: a secret split across two reads is caught by the final redaction
    # of what the model and the audit log get, not here.)
    def out(chunk: bytes) -> None:
        env.emit(ToolEvent("output", call, stream="stdout", data=_redact_bytes(env, chunk)))

    def err(chunk: bytes) -> None:
        env.emit(ToolEvent("output", call, stream="stderr", data=_redact_bytes(env, chunk)))

    # keep a little more than the model will see: redaction first, then the final cut
    return env.runner.run(
        host.name,
        command,
        source=env.source,
        conversation_id=env.conversation_id,
        decision=call.decision,
        decision_reason=call.policy_reason,
        timeout=timeout,
        on_stdout=out,
        on_stderr=err,
        capture=env.output_limit * 4,
        sandbox=sandbox,
    )


# --------------------------------------------------------------------------- scripts and the sandbox


def _scripts(env: ToolEnv, server: str) -> ScriptSource:
    """Where the gate reads a script a command runs: the file this conversation wrote, else the
    file on the server (read over the same connection, bounded, recorded); else unseen."""
    from vpsagent.safety.scripts import ChainedSource, ReaderSource, WrittenFiles

    written = env.written.setdefault(server, WrittenFiles())
    if env.dry_run:
        return written

    def read(path: str, limit: int) -> bytes | None:
        host = env.host(server)
        label = f"read_file {shlex.quote(path)} (to judge the script before it runs)"
        return env.runner.operation(server, label, lambda: host.read_file(path, max_bytes=limit), source=env.source,
                                    size=len, conversation_id=env.conversation_id, decision="allow",
                                    decision_reason="read by vpsagent's safety gate")

    return ChainedSource((written, ReaderSource(read)))


def _read_only_view(env: ToolEnv, call: ToolCall) -> Sandbox | None:
    """The sandbox a command the gate rated read-only runs in (every command in --read-only);
    None when the policy requires one and this server has none (the call is then denied)."""
    from vpsagent.outcomes import DenyCause
    from vpsagent.remote.sandbox import Sandbox
    from vpsagent.safety.policy import Mode

    server = call.server or ""
    if call.risk != "read-only" and env.mode != Mode.READ_ONLY:
        return Sandbox.NONE
    kind = env.runner.sandbox(server, conversation_id=env.conversation_id)
    if kind != Sandbox.NONE:
        return kind
    if env.policy.sandbox_required(server, tuple(env.scope[server].tags)):
        call.decision, call.cause = "deny", DenyCause.SANDBOX_REQUIRED.value
        call.policy_reason = (f"{server} offers no read-only sandbox (no bubblewrap, not root) and the policy "
                              "requires one for read-only work")
        env.runner.audit.record_decision(server=server, command=call.command or "", source=env.source,
                                         conversation_id=env.conversation_id, decision="deny",
                                         reason=call.policy_reason)
        return None
    if server not in env.unsandboxed:
        env.unsandboxed.add(server)
        note = (f"{server}: no read-only sandbox here (install bubblewrap, or connect as root): read-only "
                "commands run unconfined")
        env.notices.append(note)
        env.emit(ToolEvent("notice", call, data=note.encode()))
    return Sandbox.NONE


def format_command_result(result: CommandResult, redactor: Redactor, limit: int = DEFAULT_LIMIT) -> str:
    """exit code, duration, stdout and stderr — redacted, then bounded to `limit` bytes in all."""
    head = f"exit_code: {result.exit_code}\nduration_s: {result.duration_s:.2f}\n"
    if result.status != "ok":
        head += f"status: {result.status}" + (f" ({result.error})" if result.error else "") + "\n"
    out = redactor.redact(result.stdout_text())
    err = redactor.redact(result.stderr_text())
    room = max(1024, limit - len(head.encode()) - 200)
    # stderr is usually short and says what went wrong: give it what it needs first, up to half
    err_room = min(len(err.encode()), room // 2) if out else room
    out_room = room - min(len(err.encode()), err_room)
    # the full size matters only when the host's capture already cut something out
    out_b = bound(out, max(512, out_room), total=result.stdout_bytes if result.stdout_truncated else None)
    err_b = bound(err, max(512, err_room), total=result.stderr_bytes if result.stderr_truncated else None)
    text = head + f"--- stdout ({result.stdout_bytes} bytes) ---\n{out_b}\n--- stderr ({result.stderr_bytes} bytes) ---\n{err_b}"
    return bound(text, limit)


# --------------------------------------------------------------------------- files


def _read_file(env: ToolEnv, call: ToolCall) -> ToolOutcome:
    from vpsagent.safety.classify import classify

    path = call.input.get("path")
    if not isinstance(path, str) or not path.strip():
        return _invalid(env, call, "path must be a non-empty string")
    max_bytes = int(_number(call.input.get("max_bytes"), DEFAULT_READ_BYTES, 1, MAX_READ_BYTES))
    # the equivalent command, so policy rules about reading files apply to this tool too
    call.command = f"read_file {shlex.quote(path)}"
    if not _gate(env, call, classify(f"cat -- {shlex.quote(path)}")):
        return _denied(env, call)
    host = env.host(call.server or "")
    started = time.monotonic()
    try:
        data = _audited(env, call, lambda: host.read_file(path, max_bytes=max_bytes + 1), size=len)
    except errors.Unreachable:
        raise
    except (OSError, errors.VpsAgentError) as exc:
        msg = getattr(exc, "message", None) or str(exc)
        outcome = ToolOutcome(call, f"error: cannot read {path}: {env.redactor.redact(msg)}", is_error=True, executed=True, exit_code=1)
        env.emit(ToolEvent("result", call, outcome=outcome))
        return outcome
    duration = time.monotonic() - started
    more = len(data) > max_bytes
    text = env.redactor.redact(data[:max_bytes].decode("utf-8", "replace"))
    header = f"{path}: {min(len(data), max_bytes)} bytes" + (" (file is longer; raise max_bytes or use run_command)" if more else "") + "\n"
    outcome = ToolOutcome(call, bound(header + text, env.output_limit), executed=True, exit_code=0, duration_s=duration)
    env.emit(ToolEvent("result", call, outcome=outcome))
    return outcome


def _parse_mode(v: object) -> int | None:
    if v is None or v == "":
        return None
    if isinstance(v, int) and not isinstance(v, bool):
        return v if 0 <= v <= 0o7777 else None
    if isinstance(v, str):
        try:
            m = int(v, 8)
        except ValueError:
            return -1
        return m if 0 <= m <= 0o7777 else -1
    return -1


def _write_file(env: ToolEnv, call: ToolCall) -> ToolOutcome:
    from vpsagent.safety.classify import classify_write

    path = call.input.get("path")
    content = call.input.get("content")
    if not isinstance(path, str) or not path.strip():
        return _invalid(env, call, "path must be a non-empty string")
    if not isinstance(content, str):
        return _invalid(env, call, "content must be a string")
    mode = _parse_mode(call.input.get("mode"))
    if mode == -1:
        return _invalid(env, call, "mode must be octal permissions such as \"0644\"")
    new = content.encode()
    call.command = f"write_file {shlex.quote(path)} ({len(new)} bytes{', mode ' + oct(mode) if mode is not None else ''})"
    host = env.host(call.server or "") if not env.dry_run else None
    old: bytes | None = None
    if host is not None:
        try:
            old = host.read_file(path, max_bytes=MAX_READ_BYTES)
        except errors.Unreachable:
            raise
        except (OSError, errors.VpsAgentError):
            old = None  # a new file
    call.diff = "".join(
        difflib.unified_diff(
            (old or b"").decode("utf-8", "replace").splitlines(keepends=True),
            content.splitlines(keepends=True),
            fromfile=f"{path} (old)" if old is not None else "/dev/null",
            tofile=f"{path} (new)",
        )
    )
    if not _gate(env, call, classify_write(path, new, mode, scripts=_scripts(env, call.server or ""))):
        return _denied(env, call)
    assert host is not None
    started = time.monotonic()
    backup = f"{path}.vpsagent-{time.strftime('%Y%m%d%H%M%S')}.bak" if old is not None else None

    def write() -> int:
        if backup is not None:
            # cp -p on the server: the whole file (not the part read for the diff), with its
            # owner and mode, so a 0600 secret does not become a world-readable backup
            r = host.run(f"cp -p -- {shlex.quote(path)} {shlex.quote(backup)}", timeout=60)
            if not r.ok:
                raise OSError(f"backup to {backup} failed: {(r.stderr_text() or r.error or '').strip()[:200]}")
        host.write_file(path, new, mode)
        return len(new)

    try:
        _audited(env, call, write, size=lambda n: n)
    except errors.Unreachable:
        raise
    except (OSError, errors.VpsAgentError) as exc:
        msg = getattr(exc, "message", None) or str(exc)
        outcome = ToolOutcome(call, f"error: cannot write {path}: {env.redactor.redact(msg)}", is_error=True, executed=True, exit_code=1)
        env.emit(ToolEvent("result", call, outcome=outcome))
        return outcome
    from vpsagent.safety.scripts import WrittenFiles

    # running this file later is judged by what was written here, not by a fresh read
    env.written.setdefault(call.server or "", WrittenFiles()).record(path, new)
    text = f"wrote {len(new)} bytes to {path}" + (f"; the old file is at {backup}" if backup else " (new file)") + "\n" + call.diff
    outcome = ToolOutcome(call, bound(env.redactor.redact(text), env.output_limit), executed=True, exit_code=0, duration_s=time.monotonic() - started)
    env.emit(ToolEvent("result", call, outcome=outcome))
    return outcome


def _audited(env: ToolEnv, call: ToolCall, op: Callable[[], T], *, size: Callable[[T], int] = lambda _v: 0) -> T:
    """File tools run no shell command, but are recorded like one: a row before, completed after."""
    return env.runner.operation(call.server or "", call.command or "", op, source=env.source, size=size,
                                conversation_id=env.conversation_id, decision=call.decision,
                                decision_reason=call.policy_reason)
