"""From a simple command's words to a judgement: name checks, scripts, the table, wrappers."""

from __future__ import annotations

import posixpath
import re

from vpsagent.safety import paths
from vpsagent.safety.analyze import Analyzer, Call, Delegate, Feed, Outcome
from vpsagent.safety.model import CHANGE, DES, RO, UNKNOWN, Finding
from vpsagent.safety.parse import Word
from vpsagent.safety.table import Program, judge, scan

_VAR_DIR = re.compile(r"\$\{?[A-Za-z_]\w*\}?(/[^$`{}*?\[]*)?/([^/$`{}*?\[]+)")
_BRACE_NAME = re.compile(r"\{[^{}]*(,|\.\.)[^{}]*\}")


def dispatch(an: Analyzer, argv: list[Word], depth: int, text: str, chain: tuple[str, ...], feed: Feed) -> None:
    w0 = argv[0]
    args = argv[1:]
    vals = tuple(w.value for w in argv)
    refused = _name_refused(w0)
    if refused is not None:
        an.add(vals, refused, text, chain)
        return
    name = w0.value
    prog = posixpath.basename(name) if "/" in name else name
    if prog in an.functions and not chain and "/" not in name:
        an.add(vals, Finding(RO, f"call of shell function {prog} (its body is judged where it is defined)"), text, (*chain, prog))
        return
    if name.startswith(("/etc/init.d/", "/etc/rc.d/init.d/")):
        _program(an, "service", Word.plain("service"), [Word.plain(prog), *args], depth, text, chain, feed)
        return
    if "/" in name and not paths.is_bin_path(name):
        call = Call(name, w0, args, feed, an, depth, (*chain, name))
        an.add(vals, call.script(w0, name, "exec"), text, (*chain, name))
        return
    _program(an, prog, w0, args, depth, text, chain, feed)


def _name_refused(w0: Word) -> Finding | None:
    if w0.dynamic and not (_VAR_DIR.fullmatch(w0.value) and not w0.computed):
        what = "a command substitution" if w0.computed else "a variable"
        return Finding(DES, f"the program name {w0.value} comes from {what}, so what runs cannot be seen")
    if not w0.quoted and (w0.glob or _BRACE_NAME.search(w0.value)):
        return Finding(DES, f"the program name {w0.value} is a glob or brace pattern, so what runs cannot be seen")
    if not w0.value:
        return Finding(UNKNOWN, "an empty program name")
    return None


def _program(an: Analyzer, prog: str, w0: Word, args: list[Word], depth: int, text: str,
             chain: tuple[str, ...], feed: Feed) -> None:
    from vpsagent.safety.programs import PROGRAMS

    spec = PROGRAMS.get(prog)
    chain2 = (*chain, prog)
    vals = (prog, *(w.value for w in args))
    if prog == "cd":
        _track_cd(an, args)
    if spec is None:
        an.add(vals, unknown_program(prog, args), text, chain2)
        return
    call = Call(prog, w0, args, feed, an, depth, chain2)
    outcome = _judge(call, spec)
    if isinstance(outcome, Delegate):
        _delegate(an, call, outcome, text, chain2)
        return
    outcome = _credentials(spec, args, outcome)
    if outcome.risk is RO and not outcome.reason:
        outcome = Finding(RO, f"{prog} only reads", outcome.programs)
    an.add(vals, outcome, text, chain2)


def _judge(call: Call, spec: Program) -> Outcome:
    if spec.handler is not None:
        return spec.handler(call, spec)
    if spec.wraps is not None:
        return unwrap(call, spec)
    return judge(call, spec)


def _delegate(an: Analyzer, call: Call, d: Delegate, text: str, chain: tuple[str, ...]) -> None:
    if d.floor is not None and d.floor.risk > RO:
        an.add((call.prog, *call.values), d.floor, text, chain)
    feed = d.feed if d.feed is not None else call.feed
    if d.argv is not None:
        an.argv(d.argv, call.depth, text, chain, feed)
    elif d.code is not None:
        an.run(d.code, call.depth + 1, chain, feed, d.origin or f"the {call.prog} command")


def _credentials(spec: Program, args: list[Word], found: Finding) -> Finding:
    if not spec.reads_content or found.risk > RO:
        return found
    for w in args:
        if not w.dynamic and paths.names_credential(w.value):
            return Finding(CHANGE, f"reads the credential file {w.value} (its contents would reach the model)", found.programs)
    return found


def _track_cd(an: Analyzer, args: list[Word]) -> None:
    target = next((w for w in args if not w.is_option), None)
    if target is None or target.dynamic:
        an.cwd = None if target is not None else an.cwd
        return
    an.cwd = an.resolve(target.value) if (target.value.startswith("/") or an.cwd) else None


def unknown_program(prog: str, args: list[Word]) -> Finding:
    """A program the table does not know. `--help`/`--version` alone only print (getopt)."""
    vals = [w.value for w in args]
    if vals in (["--help"], ["--version"]):
        return Finding(RO, f"{prog} {vals[0]} only prints")
    return Finding(UNKNOWN, f"{prog} is not a program the gate knows, so what it does is unknown")


def unwrap(call: Call, spec: Program) -> Outcome:
    """The generic reading of a `Wrap` rule: find the command the wrapper runs."""
    rule = spec.wraps
    assert rule is not None
    s, rest = scan(call.args, rule.with_arg, rule.long_with_arg, stop_at_operand=True)
    if "--help" in s.flags or ("--version" in s.flags and not rest):
        return Finding(RO, f"{call.prog} only prints help or its version")
    for opt in rule.code:
        code = s.value(opt)
        if code is not None:
            return Delegate(code=code.value, origin=f"the {call.prog} {opt} command", floor=_floor(call, rule))
    while rest and rest[0].value in rule.stop_at:
        rest = rest[1:]
    if len(rest) <= rule.skip:
        return Finding(rule.alone, f"{call.prog} {rule.alone_why}")
    inner = rest[rule.skip:]
    if rule.join:
        return Delegate(code=" ".join(w.value for w in inner), origin=f"the command {call.prog} runs", floor=_floor(call, rule))
    return Delegate(argv=inner, floor=_floor(call, rule))


def _floor(call: Call, rule: object) -> Finding | None:
    from vpsagent.safety.table import Wrap

    assert isinstance(rule, Wrap)
    if rule.floor is RO:
        return None
    return Finding(rule.floor, f"{call.prog} {rule.floor_why}".strip())


__all__ = ["dispatch", "unknown_program", "unwrap", "CHANGE", "UNKNOWN"]
