"""find (and fd): `-delete` destroys, `-exec`/`-ok` run a command on every match, `-fprint` writes."""

from __future__ import annotations

from vpsagent.safety import paths
from vpsagent.safety.analyze import Call, Outcome
from vpsagent.safety.model import DES, RO, Finding
from vpsagent.safety.parse import Word
from vpsagent.safety.table import Program, opts, scan

_WITH_ARG = frozenset({"-D", "-O"})
_EXEC = frozenset({"-exec", "-execdir", "-ok", "-okdir"})
_WRITES = frozenset({"-fprint", "-fprint0", "-fls", "-fprintf"})


def _starts(args: list[Word]) -> tuple[list[Word], int]:
    """The starting points before the expression (`find [-H -L -P] [-D x] PATH... EXPR`)."""
    k = 0
    starts: list[Word] = []
    while k < len(args):
        v = args[k].value
        if v in ("-H", "-L", "-P"):
            k += 1
        elif v in _WITH_ARG:
            k += 2
        elif v.startswith("-") or v in ("(", "!", ",", "\\("):
            break
        else:
            starts.append(args[k])
            k += 1
    return starts, k


def find(call: Call, spec: Program) -> Outcome:
    args = call.args
    starts, k = _starts(args)
    # the base of `{}`: the single starting point, or the most sensitive of several
    sensitive = [w for w in starts if not w.dynamic and paths.is_system_path(w.value)]
    root = sensitive[0] if sensitive else starts[0] if len(starts) == 1 and not starts[0].dynamic else None
    out = Finding(RO, "find without actions only lists")
    i = k
    while i < len(args):
        v = args[i].value
        if v == "-delete":
            out = out.worst(Finding(DES, "find -delete deletes every file it matches"))
        elif v in _EXEC:
            inner, i = _exec_words(args, i + 1, root)
            out = out.worst(call.run_argv(inner, f"find {v}"))
        elif v in _WRITES and i + 1 < len(args):
            out = out.worst(call.write(args[i + 1], f"find {v}"))
            i += 1
        i += 1
    return out


def _exec_words(args: list[Word], j: int, root: Word | None) -> tuple[list[Word], int]:
    inner: list[Word] = []
    while j < len(args) and args[j].value not in (";", "+", "\\;"):
        w = args[j]
        if "{}" in w.value:
            # `{}` is each path found: under the single starting point if there is one
            base = root.value.rstrip("/") + "/" if root is not None and w.value.startswith("{}") else ""
            w = Word(base + w.value, dynamic=True, prefix=base + w.value.split("{}")[0], quoted=w.quoted, many=True)
        inner.append(w)
        j += 1
    return inner, j


def fd(call: Call, spec: Program) -> Outcome:
    s, rest = scan(call.args, "edtxXjEcS", opts("--exec", "--exec-batch", "--extension", "--type", "--max-depth",
                                              "--exclude", "--size", "--changed-within", "--changed-before",
                                              "--owner", "--threads", "--color", "--base-directory", "--search-path"))
    for flag in ("-x", "--exec", "-X", "--exec-batch"):
        if flag in s.flags:
            idx = next(i for i, w in enumerate(call.args) if w.value == flag)
            inner = [Word(w.value, dynamic=True, prefix="", many=True) if "{" in w.value else w
                     for w in call.args[idx + 1:] if w.value != ";"]
            return call.run_argv(inner or [Word.plain("true")], f"{call.prog} {flag}")
    return Finding(RO, f"{call.prog} only lists")
