"""From a simple command's words to a judgement: name checks, scripts, the table, wrappers."""

from __future__ import annotations

import posixpath
import re

from vpsagent.safety import paths
from vpsagent.safety.analyze import Analyzer, Call, Delegate, Feed, Outcome
from vpsagent.safety.model import CHANGE, DES, RO, UNKNOWN, Finding
from vpsagent.safety.parse import Word
from vpsagent.safety.table import Program, Scan, Wrap, judge, scan

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
    if w0.expanded or prog in an.aliases:
        # `a=up; b=time; $a$b`, `{rm,-rf,/}`, an alias: judged as what runs, and never less than unknown
        why = "is an alias" if prog in an.aliases else "is assembled from variables or braces"
        an.add(vals, Finding(UNKNOWN, f"the program name {name} {why}"), text, chain)
    if prog in an.functions and not chain and "/" not in name:
        an.add(vals, Finding(RO, f"call of shell function {prog} (its body is judged where it is defined)"), text, (*chain, prog))
        return
    if "/" in name and an.resolve(name) in an.written:
        # running a file this same command line wrote: judged by what was written
        an.add(vals, _written_run(an, name, depth), text, (*chain, name))
        return
    if name.startswith(("/etc/init.d/", "/etc/rc.d/init.d/")):
        _program(an, "service", Word.plain("service"), [Word.plain(prog), *args], depth, text, chain, feed)
        return
    if "/" in name and not paths.is_bin_path(name):
        call = Call(name, w0, args, feed, an, depth, (*chain, name))
        an.add(vals, call.script(w0, name, "exec"), text, (*chain, name))
        return
    _program(an, prog, w0, args, depth, text, chain, feed)


def _written_run(an: Analyzer, name: str, depth: int) -> Finding:
    from vpsagent.safety.scripts import judge_code

    content = an.written[an.resolve(name)]
    if content is None:
        return Finding(DES, f"{name} runs a file this command wrote from content that cannot be seen (a download?)")
    return judge_code(an, content, "exec", f"{name} (written by this command)", depth)


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
    outcome = asks_help(prog, args) or _judge(call, spec)
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


_HELP = frozenset({"--help", "-help", "--usage"})
_VERSION = frozenset({"--version", "-version"})


def asks_help(prog: str, args: list[Word]) -> Finding | None:
    """`PROG [SUBCOMMAND…] --help` and `PROG --version` only print (the getopt convention):
    with nothing else on the line but subcommand words, whatever the program."""
    vals = [w.value for w in args]
    if len(vals) == 1 and vals[0] in _VERSION:
        return Finding(RO, f"{prog} {vals[0]} only prints its version")
    if not any(v in _HELP for v in vals):
        return None
    if all(v in _HELP or (not v.startswith("-") and "/" not in v and not w.dynamic and "=" not in v)
           for v, w in zip(vals, args, strict=True)):
        return Finding(RO, f"{prog} {' '.join(vals)} only prints help")
    return None


# Verbs that, given to a program the gate does not know, ask it to delete: fail closed to destructive.
_DELETE_VERBS = frozenset({"delete", "destroy", "purge", "wipe", "drop", "rm", "rb", "rmdir", "erase", "prune",
                           "flushall", "del", "reset", "zap", "nuke"})


def unknown_program(prog: str, args: list[Word]) -> Finding:
    """A program the table does not know: unknown; asked to delete something, destructive;
    its help and version only print."""
    helped = asks_help(prog, args)
    if helped is not None:
        return helped
    verbs = [w.value.lower() for w in args if not w.value.startswith("-")][:3]
    hit = next((v for v in verbs if v in _DELETE_VERBS or v.split(":")[-1] in _DELETE_VERBS), None)
    if hit is not None:
        return Finding(DES, f"{prog} {hit}: a program the gate does not know, asked to delete")
    return Finding(UNKNOWN, f"{prog} is not a program the gate knows, so what it does is unknown")


def unwrap(call: Call, spec: Program) -> Outcome:
    """The generic reading of a `Wrap` rule: find the command the wrapper runs."""
    rule = spec.wraps
    assert rule is not None
    s, rest = scan(call.args, rule.with_arg, rule.long_with_arg, stop_at_operand=True)
    if "--help" in s.flags or ("--version" in s.flags and not rest):
        return Finding(RO, f"{call.prog} only prints help or its version")
    floor = _floor(call, rule, s)
    for opt in rule.code:
        code = s.value(opt)
        if code is not None:
            return Delegate(code=code.value, origin=f"the {call.prog} {opt} command", floor=floor)
    while rest and rest[0].value in rule.stop_at:
        rest = rest[1:]
    if len(rest) <= rule.skip:
        alone = Finding(rule.alone, f"{call.prog} {rule.alone_why}")
        return alone.worst(floor) if floor is not None else alone
    inner = rest[rule.skip:]
    if rule.join:
        return Delegate(code=" ".join(w.value for w in inner), origin=f"the command {call.prog} runs", floor=floor)
    return Delegate(argv=inner, floor=floor)


def _floor(call: Call, rule: Wrap, s: Scan) -> Finding | None:
    """The wrapper's own effect: what it schedules, and the files its options write."""
    out = Finding(rule.floor, f"{call.prog} {rule.floor_why}".strip()) if rule.floor is not RO else None
    for opt in rule.writes:
        for target in s.values.get(opt, []):
            found = call.write(target, f"{call.prog} {opt}")
            out = found if out is None else out.worst(found)
    return out if out is not None and out.risk > RO else None


__all__ = ["dispatch", "unknown_program", "unwrap", "CHANGE", "UNKNOWN"]
