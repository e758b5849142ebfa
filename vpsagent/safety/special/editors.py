"""Editors: interactive ones change a file; batch ones (ed, ex, vim -es) run a script on it."""

from __future__ import annotations

import re

from vpsagent.safety import paths
from vpsagent.safety.analyze import Call, Outcome
from vpsagent.safety.model import DES, RO, UNKNOWN, Finding
from vpsagent.safety.special.sed import ed_script
from vpsagent.safety.table import Program, opts, scan


def vim(call: Call, spec: Program) -> Outcome:
    """vim/vi/nvim/ex/view: `-c`/`+cmd` commands and a script on stdin are judged; -R is reading."""
    ex_mode = call.prog == "ex" or any(re.fullmatch(r"-[a-zA-Z]*[eE][a-zA-Z]*", w.value) for w in call.args)
    # in Ex mode -s means silent; otherwise -s takes a script file
    s, _ = scan(call.args, "cSTuUiwWrtq" + ("" if ex_mode else "s"), opts("--cmd", "--servername", "--remote",
                                                                          "--remote-send"))
    cmds = [w.value for w in s.values.get("-c", []) + s.values.get("--cmd", [])]
    cmds += [w.value[1:] for w in s.operands if w.value.startswith("+") and len(w.value) > 1]
    files = [w for w in s.operands if not w.value.startswith("+")]
    batch = ex_mode and (s.has("-s") or call.prog == "ex" or s.has("-e", "-E"))
    if s.value("-s", "-S") is not None and not batch:
        return Finding(UNKNOWN, f"{call.prog} -s/-S runs a script file the gate has not read")
    script = "\n".join(c for c in cmds)
    if batch and call.feed.kind == "data":
        script += "\n" + call.feed.data.decode("utf-8", "replace")
    elif batch and call.feed.kind == "unseen":
        return Finding(DES, f"{call.prog} runs editor commands piped from `{call.feed.source}`, which cannot be seen")
    elif batch and call.feed.kind == "file":
        return Finding(UNKNOWN, f"{call.prog} runs editor commands from {call.feed.path}, which the gate has not read")
    found = ed_script(call, script, files)
    if s.has("-R") or call.prog == "view" or s.has("-d") and not cmds:
        return found if found.risk > RO else Finding(RO, f"{call.prog} -R only views")
    if batch or cmds:
        return found
    return _interactive(call, files)


def _interactive(call: Call, files: list) -> Finding:  # type: ignore[type-arg]
    shown = " ".join(f.value for f in files) or "a new file"
    if any(paths.is_critical_file(f.value) for f in files):
        return Finding(DES, f"{call.prog} edits the critical file {shown}")
    # what an interactive session changes is decided at the keyboard, not on the command line
    return Finding(UNKNOWN, f"{call.prog} opens an interactive editor on {shown}")


def ed(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "p", opts("--prompt"))
    files = s.operands
    if call.feed.kind == "data":
        return ed_script(call, call.feed.data.decode("utf-8", "replace"), files) \
            or Finding(RO, f"{call.prog} only reads")
    if call.feed.kind == "unseen":
        return Finding(DES, f"{call.prog} runs editor commands piped from `{call.feed.source}`, which cannot be seen")
    if call.feed.kind == "file":
        return Finding(UNKNOWN, f"{call.prog} runs editor commands from {call.feed.path}, which the gate has not read")
    return _interactive(call, files)


def simple_editor(call: Call, spec: Program) -> Outcome:
    """nano, emacs, mcedit, joe: an interactive edit of the files named."""
    s, _ = scan(call.args, "", opts())
    if s.has("--batch", "-batch", "--script", "-l", "--eval"):
        return Finding(UNKNOWN, f"{call.prog} in batch mode runs code")
    if s.has("-v", "--view"):
        return Finding(RO, f"{call.prog} -v only views")
    return _interactive(call, s.operands)


__all__ = ["vim", "ed", "simple_editor", "DES"]
