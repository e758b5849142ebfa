"""Archivers and copiers: tar, zip/unzip, rsync, gzip & co. Listing reads; creating and
extracting write; removing the source files or deleting at the destination destroys;
options that run a command (`--to-command`, `--checkpoint-action=exec`, `zip -TT`, `rsync -e`)
are judged as the command."""

from __future__ import annotations

import re

from vpsagent.safety import paths
from vpsagent.safety.analyze import Call, Outcome
from vpsagent.safety.model import CHANGE, DES, RO, UNKNOWN, Finding
from vpsagent.safety.parse import Word
from vpsagent.safety.table import Program, opts, scan

_TAR_RUNS = ("--to-command", "--use-compress-program", "--rsh-command", "--info-script", "--new-volume-script")


def _tar_letters(vals: list[str]) -> str:
    first = vals[0] if vals else ""
    if first and not first.startswith("-"):
        return first
    return "".join(v[1:] for v in vals if re.fullmatch(r"-[a-zA-Z]+", v))


def tar(call: Call, spec: Program) -> Outcome:
    vals = call.values
    letters = _tar_letters(vals)
    longs = {v.split("=")[0] for v in vals if v.startswith("--")}
    out = _tar_runs(call, vals)
    if "--remove-files" in longs:
        return out.worst(Finding(DES, "tar --remove-files deletes the files it archives"))
    if "O" in letters or "--to-stdout" in longs:
        return out.worst(Finding(RO, "tar -xO only prints to stdout"))
    if "t" in letters or "--list" in longs or "--diff" in longs or "--compare" in longs or \
            ("d" in letters and "c" not in letters and "x" not in letters):
        return out.worst(Finding(RO, "tar -t only lists"))
    if "--delete" in longs:
        return out.worst(Finding(CHANGE, "tar --delete changes an archive"))
    if "x" in letters or "--extract" in longs or "--get" in longs:
        return out.worst(_tar_extract(vals, longs))
    return out.worst(_tar_create(call, vals, letters))


def _tar_runs(call: Call, vals: list[str]) -> Finding:
    out = Finding(RO, "")
    for i, v in enumerate(vals):
        name, eq, value = v.partition("=")
        if name in _TAR_RUNS or name == "-I":
            code = value if eq else (vals[i + 1] if i + 1 < len(vals) else "")
            out = out.worst(call.shell(code, f"tar {name}") if code else Finding(UNKNOWN, f"tar {name}"))
        elif name == "--checkpoint-action" and value.startswith(("exec=", "exec:")):
            out = out.worst(call.shell(value[5:], "tar --checkpoint-action=exec"))
    return out


def _tar_extract(vals: list[str], longs: set[str]) -> Finding:
    for i, v in enumerate(vals):
        target = vals[i + 1] if v in ("-C", "--directory") and i + 1 < len(vals) else (v.split("=", 1)[1] if v.startswith("--directory=") else None)
        if target is not None and paths.norm(target) == "/":
            return Finding(DES, "tar -x into / can overwrite system files")
    if "--unlink-first" in longs or "--recursive-unlink" in longs:
        return Finding(DES, "tar --recursive-unlink deletes directories before extracting")
    return Finding(CHANGE, "tar -x writes files")


def _tar_create(call: Call, vals: list[str], letters: str) -> Finding:
    target = None
    for i, v in enumerate(vals):
        if v in ("-f", "--file") and i + 1 < len(vals):
            target = vals[i + 1]
        elif v.startswith("--file="):
            target = v.split("=", 1)[1]
        elif re.fullmatch(r"-?[a-zA-Z]*f", v) and i + 1 < len(vals) and (v.startswith("-") or i == 0):
            target = vals[i + 1]
    if target in ("-", "/dev/stdout", "/dev/null") or (target is None and "c" in letters):
        return Finding(RO, "tar -c to stdout only reads")
    if target is not None:
        found = call.write(Word.plain(target), "tar -f")
        return Finding(CHANGE, f"tar writes the archive {target}").worst(found)
    return Finding(UNKNOWN, "tar with an operation the gate does not know")


def zip_(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "bnxitPZ", opts("--unzip-command", "--temp-path", "--suffixes", "--exclude", "--include",
                                        "--password", "--before", "--after"))
    out = Finding(CHANGE, "zip writes an archive")
    for w in s.values.get("--unzip-command", []):
        out = out.worst(call.shell(w.value, "zip -TT"))
    tt = [call.args[i + 1] for i, w in enumerate(call.args[:-1]) if w.value == "-TT"]
    for w in tt:
        out = out.worst(call.shell(w.value, "zip -TT"))
    if s.has("-m", "--move"):
        out = out.worst(Finding(DES, "zip -m deletes the files it archives"))
    if s.has("-d", "--delete") and not s.has("-m"):
        out = out.worst(Finding(CHANGE, "zip -d deletes entries from an archive"))
    if s.has("-sf", "--show-files") or s.has("-T", "--test") and not tt and len(s.operands) <= 1:
        return Finding(RO, "zip -sf/-T only lists or tests")
    return out


def unzip(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "dxP", opts())
    if s.has("-l", "-t", "-v", "-Z", "-p", "-c", "-z", "-q") and not s.value("-d") and s.has("-l", "-t", "-v", "-Z", "-p", "-c", "-z"):
        return Finding(RO, "unzip -l/-t only lists")
    target = s.value("-d")
    if target is not None and paths.norm(target.value) == "/":
        return Finding(DES, "unzip -d / can overwrite system files")
    return Finding(CHANGE, "unzip writes files")


def rsync(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "eBfTM", opts("--rsh", "--exclude", "--include", "--filter", "--backup-dir", "--chmod",
                                      "--chown", "--rsync-path", "--exclude-from", "--include-from", "--files-from",
                                      "--log-file", "--password-file", "--temp-dir", "--compare-dest", "--link-dest",
                                      "--copy-dest", "--partial-dir", "--suffix", "--bwlimit", "--timeout", "--port",
                                      "--out-format", "--info", "--debug", "--max-size", "--min-size", "--remote-option"))
    out = Finding(RO, "")
    for w in s.values.get("-e", []) + s.values.get("--rsh", []):
        out = out.worst(_transport(call, w))
    for w in s.values.get("--rsync-path", []):
        out = out.worst(call.shell(w.value, "rsync --rsync-path (run on the remote)"))
    if s.has("-n", "--dry-run", "--list-only"):
        return out.worst(Finding(RO, "rsync --dry-run changes nothing"))
    deleting = sorted(f for f in s.flags if f.startswith("--del") or f in ("--remove-source-files", "--remove-sent-files"))
    dest = s.operands[-1].value if len(s.operands) > 1 else ""
    if deleting:
        return out.worst(Finding(DES, f"rsync {deleting[0]} deletes files ({dest or 'at the destination'})"))
    if dest and paths.is_critical_file(dest.split(":")[-1]):
        return out.worst(Finding(DES, f"rsync onto {dest} overwrites a critical system file"))
    if len(s.operands) == 1:
        return out.worst(Finding(RO, "rsync with one operand only lists"))
    return out.worst(Finding(CHANGE, f"rsync writes {dest or 'files'}"))


def _transport(call: Call, w: Word) -> Finding:
    """`rsync -e 'ssh -p 2222'`: ssh with options is the usual transport; anything else runs."""
    words = w.value.split()
    if words and words[0].rsplit("/", 1)[-1] in ("ssh", "rsh") and all(not x.lower().startswith(("proxycommand", "-oproxycommand", "localcommand")) for x in words):
        return Finding(RO, "")
    return call.shell(w.value, "rsync -e")


def gzip(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "SbT", opts("--suffix", "--threads"))
    if s.has("-c", "--stdout", "-l", "--list", "-t", "--test", "-h", "--help", "-V", "--version", "--to-stdout") \
            or not s.operands:
        return Finding(RO, f"{call.prog} -c/-l/-t only prints")
    return Finding(CHANGE, f"{call.prog} replaces files with (de)compressed ones")


def sevenzip(call: Call, spec: Program) -> Outcome:
    words = [w for w in call.values if not w.startswith("-")]
    if words[:1] in (["l"], ["t"], ["i"], ["h"]):
        return Finding(RO, f"{call.prog} {words[0]} only lists or tests")
    if words[:1] == ["d"]:
        return Finding(CHANGE, f"{call.prog} d deletes entries from an archive")
    if any(v == "-sdel" for v in call.values):
        return Finding(DES, f"{call.prog} -sdel deletes the files it archives")
    return Finding(CHANGE, f"{call.prog} writes files")
