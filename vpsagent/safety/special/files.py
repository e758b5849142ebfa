"""Programs that delete, move, overwrite or re-permission files: judged by their paths."""

from __future__ import annotations

import re

from vpsagent.safety import paths
from vpsagent.safety.analyze import Call, Outcome
from vpsagent.safety.model import CHANGE, DES, RO, Finding
from vpsagent.safety.parse import Word
from vpsagent.safety.table import Program, opts, scan


def _joined(ws: list[Word]) -> str:
    return " ".join(w.value for w in ws) or "its input"


def _unknown_path(w: Word) -> bool:
    """A path whose start is decided at run time (`$DIR/x`, xargs input, `{}`): could be `/`."""
    return w.dynamic and not w.prefix.strip("/")


def _lost(w: Word) -> str | None:
    """Why deleting this one path is destructive, or None when it is a bounded change."""
    if w.many:
        return f"{w.value} stands for every path find or xargs passes"
    if _unknown_path(w):
        return f"{w.value} is a path only known at run time"
    if paths.is_system_path(w.value):
        return f"{w.value} is a system file or directory"
    if paths.is_data_path(w.value) and not paths.is_scratch(w.value):
        return f"{w.value} holds data"
    if paths.names_credential(w.value) or paths.is_access_config(w.value):
        return f"{w.value} is a key or the SSH server's configuration (access is lost)"
    if w.glob and not paths.is_scratch(w.value):
        return f"the glob {w.value} deletes every file it matches"
    return None


def rm(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args)
    if s.has("--no-preserve-root"):
        return Finding(DES, "rm --no-preserve-root can delete the whole filesystem")
    if s.has("-r", "-R", "--recursive"):
        return Finding(DES, f"rm -r on {_joined(s.operands)} deletes a whole tree")
    if not s.operands:
        return Finding(RO, "rm without files deletes nothing")
    for w in s.operands:
        why = _lost(w)
        if why is not None:
            return Finding(DES, f"rm of {why}")
    return Finding(CHANGE, f"rm deletes {_joined(s.operands)}")


def unlink(call: Call, spec: Program) -> Outcome:
    for w in call.args:
        why = _lost(w)
        if why is not None:
            return Finding(DES, f"{call.prog} of {why}")
    return Finding(CHANGE, f"{call.prog} deletes {_joined(call.args)}")


def rmdir(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args)
    for w in s.operands:
        if w.many or _unknown_path(w) or paths.is_system_path(w.value):
            return Finding(DES, f"rmdir of {w.value} removes a system directory")
    return Finding(CHANGE, f"rmdir removes the empty directories {_joined(s.operands)}")


def wipefs(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "ot", opts("--offset", "--types"))
    if s.has("-n", "--no-act"):
        return Finding(RO, "wipefs --no-act changes nothing")
    if s.has("-a", "--all", "-o", "--offset"):
        return Finding(DES, "wipefs -a erases filesystem signatures (the data becomes unreadable)")
    return Finding(RO, "wipefs without -a only lists signatures")


def dd(call: Call, spec: Program) -> Outcome:
    for w in call.args:
        if not w.value.startswith("of="):
            continue
        target = Word(w.value[3:], w.dynamic, w.prefix[3:] if w.prefix.startswith("of=") else "", w.quoted)
        if not target.dynamic and paths.is_sink(target.value):
            return Finding(RO, "dd to /dev/null only reads")
        if target.dynamic or target.value.startswith("/dev/") or paths.is_critical_file(target.value) \
                or paths.is_system_path(target.value) or paths.is_data_path(target.value):
            return Finding(DES, f"dd of={target.value} overwrites a device, a system file or data")
        return Finding(CHANGE, f"dd writes {target.value}")
    return Finding(RO, "dd without of= writes to stdout")


def truncate(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "sr", opts("--size", "--reference"))
    size = s.value("-s", "--size")
    shrinks = size is not None and (re.fullmatch(r"0+[KMGTPEZY]?i?B?|-.*|/.*|<.*", size.value) is not None)
    for w in s.operands:
        if _unknown_path(w) or paths.is_critical_file(w.value) or paths.is_system_path(w.value) \
                or paths.is_access_config(w.value):
            return Finding(DES, f"truncate of {w.value} destroys a system file")
        if shrinks and not paths.is_scratch(w.value):
            return Finding(DES, f"truncate -s {size.value if size else ''} empties or cuts {w.value} (its data is lost)")
    return Finding(CHANGE, f"truncate changes the size of {_joined(s.operands)}")


def fallocate(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "ol", opts("--offset", "--length"))
    if s.has("-p", "--punch-hole", "-c", "--collapse-range", "-z", "--zero-range", "-i", "--insert-range"):
        return Finding(DES, "fallocate -p/-c/-z discards file data")
    return truncate(call, spec) if s.has("-x") else Finding(CHANGE, f"fallocate allocates {_joined(s.operands)}")


def mv(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "tS", opts("--target-directory", "--suffix"))
    target = s.value("-t", "--target-directory")
    sources = s.operands if target else s.operands[:-1]
    dest = target.value if target else (s.operands[-1].value if s.operands else "")
    for w in sources:
        if _unknown_path(w) or w.many or paths.is_system_path(w.value):
            return Finding(DES, f"{call.prog} of {w.value} moves a system file or directory away")
    if dest and (paths.is_critical_file(dest) or paths.norm(dest) in ("/", "/dev/null")):
        return Finding(DES, f"{call.prog} onto {dest} overwrites a system path")
    if dest and (paths.persistence_kind(dest) is not None or paths.is_access_config(dest) or paths.is_database_file(dest)):
        return call.write(Word.plain(dest), call.prog)
    for w in sources:
        if paths.is_access_config(w.value) or paths.is_database_file(w.value) and not paths.is_scratch(w.value):
            return Finding(DES, f"{call.prog} of {w.value} moves away what the server needs (access or data)")
    return Finding(CHANGE, f"{call.prog} moves files ({_joined(s.operands)})")


def cp(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "tSm", opts("--target-directory", "--suffix", "--mode", "--owner", "--group"))
    if call.prog == "install" and s.has("-d", "--directory"):
        return Finding(CHANGE, "install -d creates directories")
    target = s.value("-t", "--target-directory")
    dest = target if target is not None else (s.operands[-1] if len(s.operands) > 1 else None)
    sources = s.operands if target is not None else s.operands[:-1]
    if dest is None:
        return Finding(CHANGE, f"{call.prog} copies files")
    if paths.is_block_device(dest.value) or paths.is_critical_file(dest.value):
        return Finding(DES, f"{call.prog} onto {dest.value} overwrites a critical system file or device")
    empty = bool(sources) and all(not w.dynamic and paths.norm(w.value) in ("/dev/null",) for w in sources)
    content = b"" if empty else None
    found = call.write(dest, call.prog, content)
    if content is None and paths.is_database_file(dest.value) and not dest.value.endswith("/") \
            and not paths.is_scratch(dest.value) and found.risk < DES and len(sources) == 1:
        return Finding(DES, f"{call.prog} onto {dest.value} overwrites a data file")
    return Finding(CHANGE, f"{call.prog} writes {dest.value}").worst(found)


def ln(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "tS", opts("--target-directory", "--suffix"))
    dest = s.value("-t", "--target-directory") or (s.operands[-1] if len(s.operands) > 1 else None)
    if dest is not None and s.has("-f", "--force") and (
            paths.is_critical_file(dest.value) or paths.is_database_file(dest.value) or paths.is_access_config(dest.value)):
        return Finding(DES, f"ln -f onto {dest.value} replaces a critical, access or database file")
    if dest is not None and paths.persistence_kind(dest.value) is not None:
        return call.write(dest, "ln")
    return Finding(CHANGE, f"{call.prog} creates a link")


_MODE_OPTION = re.compile(r"-[a-zA-Z]+|--[a-z-]+(=.*)?")


def chmod(call: Call, spec: Program) -> Outcome:
    """chmod, chown, chgrp, setfacl, chattr: whole system trees and critical files are destructive."""
    recursive = any(w.value in ("-R", "--recursive") or re.fullmatch(r"-[a-zA-Z]*R[a-zA-Z]*", w.value) for w in call.args)
    operands = [w for w in call.args if not _MODE_OPTION.fullmatch(w.value) or (
        call.prog == "chmod" and re.fullmatch(r"[-+=][rwxXst]+", w.value) and not re.fullmatch(r"-[RvcfH]+", w.value))]
    operands = [w for w in operands if not w.value.startswith("--reference")]
    targets = operands if call.prog in ("setfacl", "chattr") else operands[1:]
    if call.prog == "chmod" and operands:
        mode = operands[0].value
        if re.fullmatch(r"0+", mode) or re.fullmatch(r"[ugoa]*(-rwx|-rwxst|=)", mode):
            return Finding(DES, f"chmod {mode} removes all access to {_joined(targets)}")
    for t in targets:
        why = _permission_loss(call.prog, t, recursive)
        if why is not None:
            return Finding(DES, why)
    return Finding(CHANGE, f"{call.prog} changes permissions or ownership of {_joined(targets)}")


def _permission_loss(prog: str, t: Word, recursive: bool) -> str | None:
    if recursive and (_unknown_path(t) or paths.is_permission_root(t.value)):
        return f"{prog} -R on {t.value} changes a whole system tree"
    if t.many and paths.is_permission_root(t.prefix.rstrip("/") or "/"):
        return f"{prog} on every file under {t.prefix or 'an unknown directory'} changes a whole system tree"
    if not recursive and (paths.is_critical_file(t.value) or paths.norm(t.value) == "/"):
        return f"{prog} on {t.value} changes a critical system path"
    return None


def tee(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "", opts("--output-error"))
    content = call.feed.data if call.feed.kind == "data" else (
        b"" if call.feed.kind == "file" and paths.norm(call.feed.path) == "/dev/null" else None)
    out = Finding(RO, "tee without files only copies to stdout")
    for w in s.operands:
        if not w.dynamic:
            call.an.written[call.an.resolve(w.value)] = content
        out = out.worst(call.write(w, "tee to", content, append=s.has("-a", "--append")))
    return out


def output_operand(call: Call, spec: Program) -> Outcome:
    """uniq IN OUT, xxd IN OUT: the second operand is written."""
    s, _ = scan(call.args, "fsnwcl" if call.prog == "uniq" else "cglosn",
                opts("--skip-fields", "--skip-chars", "--check-chars"))
    if len(s.operands) >= 2:
        return call.write(s.operands[1], f"{call.prog} output")
    return Finding(RO, f"{call.prog} only prints")


def shred(call: Call, spec: Program) -> Outcome:
    return Finding(DES, f"{call.prog} irrecoverably destroys file contents")
