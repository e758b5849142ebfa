"""Interpreters with inline code (python -c, perl -e, ruby -e, node -e, php -r, lua -e…).

Code is read, not run: deletions are destructive, shell-outs with a literal command are
judged as that command, and code that is obviously harmless (printing, parsing JSON,
reading stdin — for python checked on its syntax tree, for the others on the names it
uses) is read-only. Anything else is unknown: `--yes` does not approve it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from vpsagent.safety import paths
from vpsagent.safety.analyze import Call, Delegate, Outcome
from vpsagent.safety.model import CHANGE, DES, RO, UNKNOWN, Finding
from vpsagent.safety.parse import Word
from vpsagent.safety.table import Program, opts, scan

if TYPE_CHECKING:
    from vpsagent.safety.analyze import Analyzer

DESTRUCTIVE_CODE = re.compile(
    r"shutil\s*\.\s*rmtree|\brmtree\b|os\s*\.\s*(remove|unlink|rmdir|removedirs)\b|\.unlink\s*\(|\bunlink\b|"
    r"FileUtils\s*\.\s*(rm|rm_r|rm_rf|remove_dir|remove_entry|remove)\w*|\brm_rf\b|fs\s*\.\s*(rm|rmdir|unlink|truncate)(Sync)?\b|"
    r"\.(rm|rmdir|unlink|truncate)Sync\s*\(|\brimraf\b|File\s*\.\s*(delete|truncate)|Dir\s*\.\s*(delete|rmdir|unlink)|"
    r"\bDROP\s+(DATABASE|TABLE|SCHEMA)\b|\bTRUNCATE\s+|os\s*\.\s*truncate|\.rmtree\(|Path\([^)]*\)\s*\.\s*(unlink|rmdir)|"
    r"\bos\.remove\b|\bunlinkSync\b|\brmSync\b|\bos\.execute\s*\(\s*['\"]rm\s|\bmkfs\b|\bshred\b",
    re.I,
)
_SHELL_OUT = re.compile(
    r"""(?:os\s*\.\s*(?:system|popen)|subprocess\s*\.\s*\w+|\bsystem|\bexec(?:Sync)?|\bspawn(?:Sync)?|\bexecFile(?:Sync)?|
        \bpopen|\bcheck_output|\bcheck_call|\bshell_exec|\bpassthru|\bproc_open|os\.execute|io\.popen|\bIO\.popen|
        \bOpen3\.\w+|\bqx|%x)\s*[({]?\s*
        (?:(?P<q>['"])(?P<s>.+?)(?P=q)|\[(?P<l>[^\]]*)\])""",
    re.X | re.S,
)
_BACKTICKS = re.compile(r"`([^`]+)`")


def judge_inline_code(an: Analyzer, lang: str, code: str, origin: str, depth: int) -> Finding:
    """Code in `lang` (python, perl, ruby, node, php, lua…): destructive when it deletes,
    judged by the commands it shells out to, and otherwise unknown — inline code is not
    proven harmless by reading it, so `--yes` does not approve it."""
    m = DESTRUCTIVE_CODE.search(code)
    if m is not None:
        return Finding(DES, f"{origin} calls {m.group(0).strip()}, which deletes data")
    out = _shell_outs(an, code, origin, depth, lang).worst(_hidden(an, code, origin, depth)).worst(
        _opened_for_writing(an, code, origin, depth))
    return Finding(UNKNOWN, f"{origin} runs {lang} code whose effect the gate cannot prove").worst(out)


_B64 = re.compile(r"['\"]([A-Za-z0-9+/]{8,}={0,2})['\"]")
_HEX = re.compile(r"['\"]((?:[0-9a-fA-F]{2}){4,})['\"]")
_OPEN_WRITE = re.compile(r"\bopen\s*\(\s*['\"]([^'\"]+)['\"]\s*,\s*['\"][^'\"]*[wa+]|"
                         r"\bopen\s*\(?\s*\$?\w+\s*,\s*['\"]\s*(?:>>?|\+<)\s*['\"]?\s*,?\s*['\"]?([^'\"\s)]+)|"
                         r"\bfile_put_contents\s*\(\s*['\"]([^'\"]+)['\"]|writeFileSync\s*\(\s*['\"]([^'\"]+)['\"]")


def _hidden(an: Analyzer, code: str, origin: str, depth: int) -> Finding:
    """Base64 or hex strings in the code that decode to a shell command (`os.system(b64decode(…))`)."""
    import base64
    import binascii

    out = Finding(RO, "")
    for literal, decode in [(m.group(1), base64.b64decode) for m in _B64.finditer(code)] + \
                           [(m.group(1), binascii.unhexlify) for m in _HEX.finditer(code)]:
        try:
            text = decode(literal + ("=" * (-len(literal) % 4) if decode is base64.b64decode else "")).decode("ascii")
        except (ValueError, binascii.Error, UnicodeDecodeError):
            continue
        if text.isprintable() and " " in text:
            cls = an.nested(text, depth + 1)
            if cls.risk is DES:
                out = out.worst(Finding(DES, f"{origin} decodes and can run `{text[:40]}`: {cls.summary}", cls.programs))
    return out


def _opened_for_writing(an: Analyzer, code: str, origin: str, depth: int) -> Finding:
    from vpsagent.safety.writes import judge_write

    out = Finding(RO, "")
    for m in _OPEN_WRITE.finditer(code):
        path = next(g for g in m.groups() if g)
        out = out.worst(judge_write(Word.plain(path), f"{origin} opens for writing", None, an=an, depth=depth))
    return out


def _shell_outs(an: Analyzer, code: str, origin: str, depth: int, lang: str) -> Finding:
    out = Finding(RO, "")
    found = [m.group("s") or " ".join(re.findall(r"""['"]([^'"]*)['"]""", m.group("l") or "")) for m in _SHELL_OUT.finditer(code)]
    if lang in ("perl", "ruby", "php"):
        found += _BACKTICKS.findall(code)
    for shell in found:
        if shell:
            cls = an.nested(shell, depth + 1, spill=())
            label = f"{origin} runs `{shell[:60]}`: {cls.summary}" if cls.risk > RO else f"{origin} runs `{shell[:60]}`"
            out = out.worst(Finding(max(cls.risk, RO), label, cls.programs))
    return out


# ---------------------------------------------------------------- the programs

# modules that are tools with a known effect; any other `-m MODULE` runs code (unknown)
_PY_MODULES_KNOWN = {"venv": CHANGE, "ensurepip": CHANGE, "py_compile": CHANGE, "compileall": CHANGE}


def python(call: Call, spec: Program) -> Outcome:
    s, rest = scan(call.args, "cmWX", opts("--check-hash-based-pycs"), stop_at_operand=True)
    code = s.value("-c")
    if code is not None:
        return judge_inline_code(call.an, "python", code.value, f"{call.prog} -c", call.depth)
    module = s.value("-m")
    if module is not None:
        return _python_module(call, module.value, rest)
    if s.has("-V", "--version", "-h", "--help", "-VV") and not rest:
        return Finding(RO, f"{call.prog} --version only prints")
    if rest and rest[0].value != "-":
        return call.script(rest[0], f"{call.prog} {rest[0].value}", "python")
    return _from_stdin(call, "python")


def _python_module(call: Call, module: str, rest: list[Word]) -> Finding:
    if module == "pip":
        from vpsagent.safety.dispatch import unknown_program
        from vpsagent.safety.programs import PROGRAMS
        from vpsagent.safety.table import judge

        spec = PROGRAMS.get("pip")
        return judge(call.derive(rest), spec) if spec is not None else unknown_program("pip", rest)
    risk = _PY_MODULES_KNOWN.get(module, UNKNOWN)
    why = "changes files" if risk is CHANGE else "runs a module whose effect is unknown"
    return Finding(risk, f"{call.prog} -m {module} {why}")


def _from_stdin(call: Call, lang: str) -> Finding:
    if call.feed.kind == "none":
        return Finding(UNKNOWN, f"{call.prog} without a script opens an interactive interpreter")
    return call.feed_code(f"the code fed to {call.prog}", lang)


def _perl_args(args: list[Word]) -> tuple[list[str], set[str], list[Word]]:
    """perl/ruby switches: -e CODE (repeatable), -i[ext], -n/-p/-l/-a, -M/-I/-F values; the rest."""
    code: list[str] = []
    switches: set[str] = set()
    i = 0
    while i < len(args):
        a = args[i].value
        if a == "--" or not a.startswith("-") or a == "-":
            break
        j = 1
        while j < len(a):
            ch = a[j]
            switches.add(ch)
            if ch in "eE":
                if i + 1 < len(args):
                    code.append(args[i + 1].value)
                    i += 1
                break
            if ch in "iIMmFxd0lCV" and ch not in "l0" or (ch in "l0" and a[j + 1:].isdigit()):
                break  # the rest of the cluster is this switch's value
            j += 1
        i += 1
    return code, switches, args[i:]


def perl_like(call: Call, spec: Program) -> Outcome:
    lang = "perl" if call.prog.startswith("perl") else "ruby"
    code, switches, rest = _perl_args(call.args)
    if not code and switches & {"v", "V"} and not rest:
        return Finding(RO, f"{call.prog} -v only prints its version")
    files = rest if code else rest[1:]
    if not code:
        if rest and rest[0].value != "-":
            return call.script(rest[0], f"{call.prog} {rest[0].value}", lang)
        return _from_stdin(call, lang)
    found = judge_inline_code(call.an, lang, "\n".join(code), f"{call.prog} -e", call.depth)
    if "i" in switches:
        return _in_place(call, found, files, code)
    return found


def _in_place(call: Call, found: Finding, files: list[Word], code: list[str]) -> Finding:
    shown = " ".join(w.value for w in files) or "files"
    if any(paths.is_critical_file(w.value) for w in files):
        return Finding(DES, f"{call.prog} -i edits the critical file {shown}").worst(found)
    if re.search(r"\$_\s*=\s*(''|\"\"|q\(\))\s*;?$|\bundef\s+\$_|^\s*(next|\$_\s*=\s*'')\s*;?\s*$", "\n".join(code)):
        return Finding(DES, f"{call.prog} -i empties {shown}")
    return Finding(UNKNOWN, f"{call.prog} -i edits {shown} in place with code").worst(found)


def node(call: Call, spec: Program) -> Outcome:
    s, rest = scan(call.args, "epr", opts("--eval", "--print", "--require", "--import", "--loader", "--input-type"),
                   stop_at_operand=True)
    code = s.value("-e", "--eval", "-p", "--print")
    if code is not None:
        found = judge_inline_code(call.an, "node", code.value, f"{call.prog} -e", call.depth)
        if s.value("-r", "--require", "--import", "--loader") is not None:
            return found.worst(Finding(UNKNOWN, f"{call.prog} --require loads a module first"))
        return found
    if s.has("-v", "--version", "-h", "--help") and not rest:
        return Finding(RO, f"{call.prog} --version only prints")
    if s.has("-c", "--check") and rest:
        return Finding(RO, f"{call.prog} --check only checks syntax")
    if rest and rest[0].value != "-":
        return call.script(rest[0], f"{call.prog} {rest[0].value}", "node")
    return _from_stdin(call, "node")


def php(call: Call, spec: Program) -> Outcome:
    s, rest = scan(call.args, "rcdfSt", opts(), stop_at_operand=True)
    code = s.value("-r")
    if code is not None:
        return judge_inline_code(call.an, "php", code.value, f"{call.prog} -r", call.depth)
    if s.has("-v", "-m", "-i", "--version", "--modules", "--info", "--ini", "-l", "--syntax-check", "-h", "--help"):
        return Finding(RO, f"{call.prog} -v/-m/-i/-l only prints or checks")
    if s.value("-S") is not None:
        return Finding(CHANGE, f"{call.prog} -S starts a web server")
    target = s.value("-f") or (rest[0] if rest else None)
    if target is not None:
        return call.script(target, f"{call.prog} {target.value}", "php")
    return _from_stdin(call, "php")


def simple_interpreter(call: Call, spec: Program) -> Outcome:
    """lua, Rscript, tclsh…: `-e CODE`, a script file, or code on stdin."""
    lang = "lua" if call.prog.startswith("lua") else call.prog
    s, rest = scan(call.args, "el", opts("--eval"), stop_at_operand=True)
    code = s.value("-e", "--eval")
    if code is not None:
        return judge_inline_code(call.an, lang, code.value, f"{call.prog} -e", call.depth)
    if s.has("-v", "--version", "-h", "--help") and not rest:
        return Finding(RO, f"{call.prog} --version only prints")
    if rest:
        return call.script(rest[0], f"{call.prog} {rest[0].value}", lang)
    return _from_stdin(call, lang)


def deno_bun(call: Call, spec: Program) -> Outcome:
    words = call.values
    if words[:1] in (["eval"], ["-e"]) and len(words) > 1:
        return judge_inline_code(call.an, "node", words[-1], f"{call.prog} eval", call.depth)
    if words in (["--version"], ["-v"], ["-V"], ["--help"], ["upgrade", "--dry-run"]):
        return Finding(RO, f"{call.prog} --version only prints")
    if words[:1] in (["install"], ["add"], ["remove"], ["cache"], ["compile"], ["fmt"]):
        return Finding(CHANGE, f"{call.prog} {words[0]} changes files")
    return Finding(UNKNOWN, f"{call.prog} runs code whose effect is unknown")


def tcl_code(call: Call, code: str) -> Outcome:
    """expect/tcl: `spawn`/`exec` commands and text `send` to a shell are judged; the rest is unknown."""
    out = Finding(UNKNOWN, f"{call.prog} runs Tcl code whose effect the gate cannot judge")
    for m in re.finditer(r"\b(spawn|exec)\s+([^;\n\]]+)", code):
        out = out.worst(call.shell(m.group(2).strip(), f"{call.prog} {m.group(1)}"))
    for m in re.finditer(r"\bsend\s+(?:--\s+)?\"((?:[^\"\\]|\\.)*)\"", code):
        text = re.sub(r"\\[rn]", "\n", m.group(1))
        out = out.worst(call.shell(text, f"the text {call.prog} sends"))
    return out


def interpreter_from_stdin(call: Call, spec: Program) -> Outcome:
    return _from_stdin(call, call.prog)


__all__ = ["Delegate"]
