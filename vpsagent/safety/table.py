"""The shape of the program table, and the one function that reads it.

Each program the gate knows is a `Program`: which subcommands and options read, change or
destroy; which options write a file or run a command; whether it runs code it is given or
wraps another command (and where that command is). `judge()` reads any entry the same way.
The few programs whose meaning depends on their operands (rm's paths, systemctl's units,
SQL text…) add a `handler` from one of the `special` modules, which may call `judge()`
for the generic part.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vpsagent.outcomes import Risk
from vpsagent.safety.model import CHANGE, DES, RO, UNKNOWN, Finding
from vpsagent.safety.parse import Word

if TYPE_CHECKING:
    from vpsagent.safety.analyze import Call, Outcome

Handler = Callable[["Call", "Program"], "Outcome"]

_PHRASE = {RO: "only reads", CHANGE: "changes the server", UNKNOWN: "is not known to the gate",
           DES: "destroys data or access"}


@dataclass(frozen=True)
class Wrap:
    """Where a wrapper finds the command it runs.

    After the wrapper's own options (`with_arg`/`long_with_arg` take a value) and `skip`
    positional words (timeout's duration, chroot's directory), the rest is the command
    (an argv), or, with `join`, shell text (ssh, watch, sg). `code` options hold shell
    text (`su -c`, `script -c`). With nothing to run, the wrapper itself is `alone`.
    """

    with_arg: str = ""
    long_with_arg: frozenset[str] = frozenset()
    skip: int = 0
    join: bool = False
    code: frozenset[str] = frozenset()
    alone: Risk = RO
    alone_why: str = "without a command"
    floor: Risk = RO  # the wrapper's own effect (at: schedules; docker run: a container)
    floor_why: str = ""
    stop_at: frozenset[str] = frozenset()  # words that end the wrapper's options without being the command
    writes: frozenset[str] = frozenset()  # options whose value is a file written (strace -o)


@dataclass(frozen=True)
class Program:
    """What the gate knows about one program (or one subcommand of one)."""

    default: Risk = UNKNOWN  # with no subcommand, or the program itself when it has none
    why: str = ""  # what it does when not read-only: "restarts services"
    subcommands: Mapping[str, Risk | Program] = field(default_factory=dict)
    other: Risk = UNKNOWN  # a subcommand not listed
    options: Mapping[str, Risk] = field(default_factory=dict)  # options that raise the class
    dry_run: frozenset[str] = frozenset()  # options that make it change nothing
    with_arg: str = ""  # short options that take a value
    long_with_arg: frozenset[str] = frozenset()
    writes: frozenset[str] = frozenset()  # options whose value is a file written
    runs: frozenset[str] = frozenset()  # options whose value is a shell command run
    version: frozenset[str] = frozenset()  # words that only print a version or help
    reads_content: bool = False  # prints what files hold (credential reads matter)
    runs_code: bool = False  # runs code it is given (needs a handler that finds the code)
    wraps: Wrap | None = None  # runs another command (and where it is)
    handler: Handler | None = None  # a special module: operands that matter
    operands_are_subcommands: bool = True  # the first operand selects from `subcommands`

    def sub(self, name: str) -> Risk | Program | None:
        return self.subcommands.get(name)


def opts(*names: str) -> frozenset[str]:
    return frozenset(names)


@dataclass
class Scan:
    """A command line split the getopt way: flags, option values, operands."""

    flags: set[str] = field(default_factory=set)
    values: dict[str, list[Word]] = field(default_factory=dict)
    operands: list[Word] = field(default_factory=list)
    after_dashdash: bool = False

    def value(self, *names: str) -> Word | None:
        for n in names:
            if self.values.get(n):
                return self.values[n][-1]
        return None

    def has(self, *names: str) -> bool:
        return any(n in self.flags for n in names)


def scan(args: list[Word], with_arg: str = "", long_with_arg: frozenset[str] = frozenset(),
         *, stop_at_operand: bool = False) -> tuple[Scan, list[Word]]:
    """Split args into options and operands; returns (scan, the rest after the first operand
    when `stop_at_operand`, else [])."""
    s = Scan()
    i = 0
    while i < len(args):
        w = args[i]
        a = w.value
        if a == "--" and not w.quoted:
            s.after_dashdash = True
            if stop_at_operand:
                return s, args[i + 1:]
            s.operands.extend(args[i + 1:])
            break
        if not a.startswith("-") or len(a) == 1 or w.dynamic:
            if stop_at_operand:
                return s, args[i:]
            s.operands.append(w)
            i += 1
            continue
        i = _option(args, i, s, with_arg, long_with_arg)
    return s, []


def _option(args: list[Word], i: int, s: Scan, with_arg: str, long_with_arg: frozenset[str]) -> int:
    a = args[i].value
    if a.startswith("--"):
        name, eq, val = a.partition("=")
        s.flags.add(name)
        if eq:
            s.values.setdefault(name, []).append(args[i].with_value(val))
        elif name in long_with_arg and i + 1 < len(args):
            s.values.setdefault(name, []).append(args[i + 1])
            return i + 2
        return i + 1
    j = 1
    while j < len(a):
        flag = "-" + a[j]
        s.flags.add(flag)
        if a[j] in with_arg:
            rest = a[j + 1:]
            if rest:
                s.values.setdefault(flag, []).append(args[i].with_value(rest))
            elif i + 1 < len(args):
                s.values.setdefault(flag, []).append(args[i + 1])
                return i + 2
            return i + 1
        j += 1
    if not a[1:].isalpha() and a[1:].isdigit():
        s.flags.add(a)  # -5 (head -5), kept whole too
    return i + 1


def phrase(risk: Risk, why: str = "") -> str:
    return why if why and risk is not RO else _PHRASE[risk]


def judge(call: Call, spec: Program, words: list[str] | None = None) -> Finding:
    """The generic reading of a table entry. `words` names the subcommands walked so far."""
    said = " ".join([call.prog, *(words or [])])
    args = call.args
    s, rest = scan(args, spec.with_arg, spec.long_with_arg, stop_at_operand=bool(spec.subcommands))
    found = _special_options(call, spec, s, said)
    if found is not None:
        return found
    if spec.subcommands and rest:
        return _subcommand(call, spec, s, rest, said, words or [])
    if rest:  # no subcommands: `rest` is empty (operands are in s)
        s.operands.extend(rest)
    return _floors(call, spec, s, Finding(spec.default, f"{said} {phrase(spec.default, spec.why)}"))


def _special_options(call: Call, spec: Program, s: Scan, said: str) -> Finding | None:
    if "--help" in s.flags and not s.operands:
        return Finding(RO, f"{said} --help only prints help")
    if ("--version" in s.flags or any(w.value in spec.version for w in call.args[:1])) and len(call.args) == 1:
        return Finding(RO, f"{said} {call.args[0].value} only prints its version")
    return None


def _subcommand(call: Call, spec: Program, s: Scan, rest: list[Word], said: str, words: list[str]) -> Finding:
    name = rest[0].value
    entry = spec.sub(name) if not rest[0].dynamic else None
    tail = rest[1:]
    if isinstance(entry, Program):
        inner = call.derive(tail)
        found = judge(inner, entry, [*words, name]) if entry.handler is None else _as_finding(entry.handler(inner, entry))
        return _floors(call, spec, s, found)
    if "--help" in (w.value for w in tail) and not isinstance(entry, Program):
        return Finding(RO, f"{said} {name} --help only prints help")
    risk = entry if entry is not None else spec.other
    sub_scan, _ = scan(tail, spec.with_arg, spec.long_with_arg)
    merged = Scan(s.flags | sub_scan.flags, {**s.values, **sub_scan.values}, sub_scan.operands)
    why = f"{said} {name} {phrase(risk, spec.why)}" if entry is not None else f"{said} {name} is a subcommand the gate does not know"
    return _floors(call, spec, merged, Finding(risk, why))


def _as_finding(out: Outcome) -> Finding:
    if isinstance(out, Finding):
        return out
    return Finding(UNKNOWN, "a nested command the gate cannot follow")


def _floors(call: Call, spec: Program, s: Scan, base: Finding) -> Finding:
    """Options that raise (or, for dry runs, lower) the class of the base judgement."""
    if spec.dry_run & s.flags and not (spec.runs & s.flags):
        return Finding(RO, f"{call.prog} {sorted(spec.dry_run & s.flags)[0]} changes nothing")
    out = base
    for flag in s.flags:
        risk = spec.options.get(flag)
        if risk is not None and risk > out.risk:
            out = Finding(risk, f"{call.prog} {flag} {phrase(risk, spec.why)}")
    for flag in spec.writes & s.flags:
        for target in s.values.get(flag, []):
            out = out.worst(call.write(target, f"{call.prog} {flag}"))
    for flag in spec.runs & s.flags:
        for code in s.values.get(flag, []):
            out = out.worst(call.shell_word(code, f"the {call.prog} {flag} command"))
    return out


def problems(programs: Mapping[str, Program], must_know: frozenset[str] = frozenset()) -> list[str]:
    """What is wrong with a table: a program that runs code or wraps a command without the rule
    that finds that code or command, or a program the gate must know that is missing."""
    out: list[str] = []
    for name, spec in sorted(programs.items()):
        out += _entry_problems(name, spec)
    for name in sorted(must_know - set(programs)):
        out.append(f"{name}: runs code or wraps a command, but is not in the table")
    for name in sorted(must_know & set(programs)):
        spec = programs[name]
        if not (spec.runs_code or spec.wraps is not None):
            out.append(f"{name}: runs code or wraps a command, but is not marked so")
    return out


def _entry_problems(name: str, spec: Program) -> list[str]:
    out: list[str] = []
    if spec.runs_code and spec.handler is None:
        out.append(f"{name}: marked 'runs code' but has no handler that finds the code")
    if spec.wraps is not None and spec.handler is None and not isinstance(spec.wraps, Wrap):
        out.append(f"{name}: marked 'wraps' but has no rule that finds the command")
    for sub, entry in spec.subcommands.items():
        if isinstance(entry, Program):
            out += _entry_problems(f"{name} {sub}", entry)
        elif not isinstance(entry, Risk):
            out.append(f"{name} {sub}: a subcommand must be a Risk or a Program")
    return out
