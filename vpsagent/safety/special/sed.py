"""sed and the batch editors (ed, ex, vim -es): what their scripts do to the file.

A sed script is read command by command: `e` and `s///e` run commands, `w`/`W` and
`s///w` write files, `d` with no address (or `1,$`) empties the file when editing in place.
"""

from __future__ import annotations

import re

from vpsagent.safety import paths
from vpsagent.safety.analyze import Call, Outcome
from vpsagent.safety.model import CHANGE, DES, RO, UNKNOWN, Finding
from vpsagent.safety.parse import Word
from vpsagent.safety.table import Program, opts, scan

_S_FLAGS_RUN = re.compile(r"s(.)(?:\\.|(?!\1).)*\1(?:\\.|(?!\1).)*\1([gpiImM0-9]*)([ew])\s*(.*)", re.S)
_ADDR = r"(?:\d+|\$|/(?:\\.|[^/])*/[IM]*|\\(.)(?:\\.|(?!\2).)*\2)"
_COMMAND = re.compile(rf"^\s*(?P<a1>{_ADDR})?(?:\s*,\s*(?P<a2>{_ADDR}|[+~]\d+))?\s*(?P<neg>!)?\s*(?P<cmd>[a-zA-Z={{}}#:])(?P<rest>.*)$", re.S)


def sed(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "efl", opts("--expression", "--file", "--line-length"))
    in_place = any(re.fullmatch(r"-[a-zA-Z]*i.*", w.value) for w in call.args if w.value.startswith("-") and not w.value.startswith("--")) \
        or any(f.startswith("--in-place") for f in s.flags)
    scripts = [w.value for w in s.values.get("-e", []) + s.values.get("--expression", [])]
    files = list(s.operands)
    if not scripts and not s.value("-f", "--file") and files:
        scripts = [files.pop(0).value]
    if s.value("-f", "--file") is not None:
        found = Finding(UNKNOWN, "sed -f runs a script file the gate has not read")
    else:
        found = judge_sed_script(call, "\n".join(scripts), in_place)
    if in_place:
        found = _in_place(call, found, files, "\n".join(scripts))
    return found


def inserted_text(script: str) -> str:
    """What a sed script puts into a file: the replacements of s///, and a/i/c text."""
    out: list[str] = []
    for command in _split(script):
        m = re.match(r"\s*(?:\S*?)?s(.)((?:\\.|(?!\1).)*)\1((?:\\.|(?!\1).)*)\1", command)
        if m is not None:
            out.append(m.group(3).replace("\\n", "\n"))
            continue
        m = re.match(rf"\s*(?:{_ADDR})?(?:\s*,\s*(?:{_ADDR}))?\s*[aic]\\?\s*(.*)$", command, re.S)
        if m is not None:
            out.append(m.group(m.lastindex or 1))
    return "\n".join(out)


def _in_place(call: Call, found: Finding, files: list[Word], script: str) -> Finding:
    for f in files:
        if paths.is_critical_file(f.value):
            return Finding(DES, f"sed -i on {f.value} edits a critical system file").worst(found)
        if paths.is_access_config(f.value) or paths.persistence_kind(f.value) is not None:
            written = inserted_text(script).encode()
            found = found.worst(call.write(f, "sed -i on", written, append=True))
        if f.dynamic and not f.prefix.strip("/") and found.risk is DES:
            return found
    shown = " ".join(f.value for f in files) or "files"
    return found if found.risk > CHANGE else Finding(CHANGE, f"sed -i edits {shown} in place").worst(found)


def judge_sed_script(call: Call, script: str, in_place: bool) -> Finding:
    out = Finding(RO, "sed without -i only prints")
    for command in _split(script):
        out = out.worst(_one(call, command, in_place))
    return out


def _split(script: str) -> list[str]:
    """sed commands, split on newlines and on `;` outside s/// and y/// and labels."""
    out: list[str] = []
    cur: list[str] = []
    i = 0
    while i < len(script):
        ch = script[i]
        if ch in "sy" and not "".join(cur).strip(" \t{}!0123456789,$") and i + 1 < len(script):
            j = _skip_subst(script, i)
            cur.append(script[i:j])
            i = j
            continue
        if ch in ";\n":
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    out.append("".join(cur))
    return [c for c in out if c.strip()]


def _skip_subst(script: str, i: int) -> int:
    """The end of `s/a/b/flags` (or y/a/b/) starting at i; flags run to `;` or newline."""
    delim = script[i + 1]
    j, seen = i + 2, 0
    while j < len(script) and seen < 2:
        if script[j] == "\\":
            j += 2
            continue
        if script[j] == delim:
            seen += 1
        j += 1
    while j < len(script) and script[j] not in ";\n}":
        j += 1
    return j


def _one(call: Call, command: str, in_place: bool) -> Finding:
    m = _COMMAND.match(command)
    if m is None:
        return Finding(UNKNOWN, f"sed command {command.strip()[:30]!r} is not one the gate knows")
    cmd, rest = m.group("cmd"), m.group("rest")
    if cmd == "s":
        return _substitute(call, "s" + rest)
    if cmd == "e":
        return Finding(UNKNOWN, f"the sed e command runs `{rest.strip()[:40]}`").worst(
            call.shell(rest.strip(), "the sed e command")) if rest.strip() else \
            Finding(DES, "the sed e command runs each input line as a command, which the gate cannot see")
    if cmd in "wW":
        return call.write(Word.plain(rest.strip()), "the sed w command")
    if cmd == "d" and in_place and m.group("a1") is None and not m.group("neg"):
        return Finding(DES, "sed -i with d on every line empties the file")
    if cmd == "d" and in_place and m.group("a1") == "1" and m.group("a2") == "$":
        return Finding(DES, "sed -i 1,$d empties the file")
    if cmd in "rRqQpPnNdDgGhHxlaicby=:#{}tT" or cmd == "F" or cmd == "z":
        return Finding(RO, "")
    return Finding(UNKNOWN, f"sed command {cmd} is not one the gate knows")


def _substitute(call: Call, text: str) -> Finding:
    m = _S_FLAGS_RUN.match(text)
    if m is None:
        return Finding(RO, "")
    if m.group(3) == "e":
        return Finding(DES, "sed s///e runs each substituted line as a command, which the gate cannot see")
    return call.write(Word.plain(m.group(4).strip()), "the sed s///w flag")


# ---------------------------------------------------------------- ed, ex, vim -es

_ED_DELETE_ALL = re.compile(r"^\s*(%|1\s*,\s*\$|,)\s*[dc]\b")


def ed_script(call: Call, script: str, files: list[Word]) -> Finding:
    """An ed/ex script: `!cmd` runs commands, `%d` empties the buffer, `w`/`x`/`wq` saves."""
    saves = False
    empties = False
    out = Finding(RO, "")
    for m in re.finditer(r"\bsystem\s*\(\s*[\"']([^\"']*)[\"']", script):
        out = out.worst(call.shell(m.group(1), f"the {call.prog} system() call"))
    if re.search(r"^\s*:?\s*(call|exe\w*|so\w*|py\w*|lua|perl|ruby)\b", script, re.M):
        out = out.worst(Finding(UNKNOWN, f"the {call.prog} script calls functions or runs code"))
    for line in re.split(r"[\n|]", script):
        s = line.strip().lstrip(":")
        if not s:
            continue
        bang = re.match(r"^(?:\S*\s*)?(?:r|w|e)?\s*!(.*)$", s) if "!" in s else None
        if bang is not None and not re.match(r"^(wq?|x)!\s*$", s):
            out = out.worst(call.shell(bang.group(1), f"the {call.prog} ! command"))
            continue
        if _ED_DELETE_ALL.match(s):
            empties = True
        if re.match(r"^(\d*,?\d*)?(w|wq|x|wall|wqa|xa|xit|up\w*|sav\w*)!?(\s|$)", s):
            saves = True
    shown = " ".join(f.value for f in files) or "a file"
    if saves and empties:
        return out.worst(Finding(DES, f"{call.prog} empties {shown} and saves it"))
    if saves:
        critical = any(paths.is_critical_file(f.value) for f in files)
        return out.worst(Finding(DES if critical else UNKNOWN, f"{call.prog} runs an editor script on {shown} and saves it"))
    return out
