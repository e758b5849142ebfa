"""awk: a reader unless its program runs commands (`system()`, `| getline`, `print | "sh"`)
or writes files (`print > "f"`, `-i inplace`)."""

from __future__ import annotations

import re

from vpsagent.safety.analyze import NO_FEED, Call, Feed, Outcome
from vpsagent.safety.model import CHANGE, RO, UNKNOWN, Finding
from vpsagent.safety.parse import Word
from vpsagent.safety.table import Program, opts, scan

_STRING = r'"((?:[^"\\]|\\.)*)"'
_SYSTEM = re.compile(r"\bsystem\s*\(")
_PIPE_OUT = re.compile(r"\|\s*&?\s*(" + _STRING + r"|[A-Za-z_]\w*)")
_GETLINE = re.compile(r"(" + _STRING + r"|[A-Za-z_]\w*|\))\s*\|\s*&?\s*getline")
_REDIRECT = re.compile(r"\bprint[f]?\b[^;{}\n]*?(>>?)\s*(" + _STRING + r"|[A-Za-z_$][\w$]*)")


def awk(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "fvFiWE", opts("--file", "--assign", "--field-separator", "--include", "--exec", "--source",
                                       "--load"))
    if s.value("-i", "--include") is not None and s.value("-i", "--include").value in ("inplace", "inplace.awk"):  # type: ignore[union-attr]
        return Finding(CHANGE, f"{call.prog} -i inplace edits files")
    if s.value("-f", "--file", "-E", "--exec") is not None:
        return Finding(UNKNOWN, f"{call.prog} -f runs a program file the gate has not read")
    if s.value("-l", "--load") is not None:
        return Finding(UNKNOWN, f"{call.prog} -l loads an extension")
    program = s.operands[0].value if s.operands else ""
    return judge_awk(call, program)


def judge_awk(call: Call, program: str) -> Finding:
    out = Finding(RO, f"{call.prog} only prints")
    strings = dict(re.findall(r"\b([A-Za-z_]\w*)\s*=\s*" + _STRING, program))
    for m in _SYSTEM.finditer(program):
        out = out.worst(_command_at(call, program, m.end(), "system()", strings))
    for m in _PIPE_OUT.finditer(program):
        if "getline" in program[m.end():m.end() + 12]:
            continue
        out = out.worst(_literal_or_unknown(call, m.group(1), "the program pipes its output to", fed=True))
    for m in _GETLINE.finditer(program):
        if m.group(2) is not None:
            out = out.worst(_literal_or_unknown(call, m.group(1), "the program reads from"))
        elif m.group(1) != ")":
            out = out.worst(Finding(UNKNOWN, f"the {call.prog} program runs a command built at run time"))
    for m in _REDIRECT.finditer(program):
        target = m.group(3) if m.group(3) is not None else None
        if target is None:
            out = out.worst(Finding(CHANGE, f"the {call.prog} program writes to a file named at run time"))
        else:
            out = out.worst(call.write(Word.plain(target), f"the {call.prog} program's print {m.group(1)}", append=m.group(1) == ">>"))
    return out


def _command_at(call: Call, program: str, pos: int, what: str, strings: dict[str, str]) -> Finding:
    m = re.match(r"\s*" + _STRING + r"\s*\)", program[pos:])
    if m is None:
        var = re.match(r"\s*([A-Za-z_]\w*)\s*\)", program[pos:])
        if var is not None and var.group(1) in strings:  # `cmd = "…"; system(cmd)`
            return _judged(call, _unescape(strings[var.group(1)]), f"the {call.prog} program's {what}")
        return Finding(UNKNOWN, f"the {call.prog} program calls {what} with a command built at run time")
    return _judged(call, _unescape(m.group(1)), f"the {call.prog} program's {what}")


def _judged(call: Call, code: str, origin: str, *, fed: bool = False) -> Finding:
    # a command that reads the program's output (`print | "sh"`) reads text the gate cannot see
    feed = Feed("unseen", source=f"the {call.prog} program's output") if fed else NO_FEED
    found = call.shell(code, origin, feed)
    return Finding(UNKNOWN, f"{origin} runs `{code[:40]}` from inside awk").worst(found)


def _literal_or_unknown(call: Call, token: str, what: str, *, fed: bool = False) -> Finding:
    if token.startswith('"'):
        return _judged(call, _unescape(token[1:-1]), f"the {call.prog} {what} a command", fed=fed)
    return Finding(UNKNOWN, f"the {call.prog} {what} a command built at run time")


def _unescape(s: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), s)
