"""Disks, filesystems and mounts: formatting, partitioning, shrinking, wiping and unmounting
what the system runs on are destructive; the read-only and dry-run forms only look."""

from __future__ import annotations

import re

from vpsagent.safety import paths
from vpsagent.safety.analyze import Call, Outcome
from vpsagent.safety.model import CHANGE, DES, RO, Finding
from vpsagent.safety.table import Program, opts, scan


def mkfs(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "tbLNmOcEICJgGTUeor", opts("--type"))
    if s.has("-n", "--dry-run", "--help", "-V", "--version") and call.prog not in ("mkswap", "mkfs.vfat", "mkfs.fat", "mkdosfs"):
        return Finding(RO, f"{call.prog} -n only shows what it would do")
    if call.prog == "mkswap" and s.operands and not s.operands[-1].value.startswith("/dev/"):
        return Finding(CHANGE, f"mkswap prepares the swap file {s.operands[-1].value}")
    return Finding(DES, f"{call.prog} formats a filesystem (everything on it is lost)")


_PART_READ = frozenset({"-l", "--list", "-s", "--show", "-p", "--print", "-d", "--dump", "-V", "--verify",
                        "--version", "-v", "-h", "--help", "-i", "--info", "-J", "--json", "-x", "--list-free", "-F"})
_PARTED_WRITE = frozenset({"mklabel", "mktable", "mkpart", "rm", "resizepart", "mkfs", "name", "set", "rescue", "toggle",
                           "disk_set", "disk_toggle", "type", "resize", "move"})


def partition(call: Call, spec: Program) -> Outcome:
    vals = call.values
    if call.prog == "parted" and any(v in ("print", "-l", "--list", "p") for v in vals) and not (set(vals) & _PARTED_WRITE):
        return Finding(RO, "parted print only reads the partition table")
    if vals and all(v in _PART_READ or v.startswith("/dev/") or v in ("-m", "-s", "--script") for v in vals) \
            and any(v in _PART_READ for v in vals):
        return Finding(RO, f"{call.prog} listing only reads the partition table")
    return Finding(DES, f"{call.prog} rewrites partition tables")


def lvm(call: Call, spec: Program) -> Outcome:
    """lvreduce, lvresize, lvremove…: shrinking or removing a volume loses what is on it."""
    vals = call.values
    if any(v in ("-t", "--test") for v in vals):
        return Finding(RO, f"{call.prog} --test changes nothing")
    if call.prog in ("lvremove", "vgremove", "pvremove", "lvreduce"):
        return Finding(DES, f"{call.prog} destroys data on a volume")
    size = next((vals[i + 1] for i, v in enumerate(vals[:-1]) if v in ("-L", "--size", "-l", "--extents")), "")
    size = size or next((v.split("=", 1)[1] for v in vals if v.startswith(("--size=", "--extents="))), "")
    size = size or next((v[2:] for v in vals if re.fullmatch(r"-[Ll]-.+", v)), "")
    if size.startswith("-"):
        return Finding(DES, f"{call.prog} shrinks a volume (data past the new end is lost)")
    if call.prog == "lvresize" and size and not size.startswith("+"):
        return Finding(DES, f"lvresize to an absolute size {size} can shrink the volume (data past the new end is lost)")
    return Finding(CHANGE, f"{call.prog} changes a volume")


def fsck(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "tCbBlLEOcfj", opts())
    if s.has("-n", "--dry-run", "-N", "--help", "-V", "--version") or call.prog == "xfs_repair" and s.has("-n"):
        return Finding(RO, f"{call.prog} -n only checks")
    if call.prog == "xfs_repair" and s.has("-L"):
        return Finding(DES, "xfs_repair -L zeroes the log (recent changes are lost)")
    return Finding(CHANGE, f"{call.prog} repairs a filesystem")


def badblocks(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "bcdeiopt", opts())
    if s.has("-w"):
        return Finding(DES, "badblocks -w overwrites the whole device")
    if s.has("-n"):
        return Finding(CHANGE, "badblocks -n rewrites every block (non-destructively)")
    return Finding(RO, "badblocks only reads the device")


_SYSTEM_MOUNTS = frozenset({"/", "/usr", "/var", "/boot", "/boot/efi", "/home", "/etc", "/lib", "/bin", "/sbin", "/root",
                            "/opt", "/srv", "/var/lib", "/proc", "/sys", "/dev", "/run"})


def umount(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "tOuN", opts("--types", "--test-opts", "--namespace"))
    if s.has("-a", "--all", "-A", "--all-targets"):
        return Finding(DES, f"{call.prog} -a detaches every filesystem")
    for w in s.operands:
        if w.dynamic or paths.norm(w.value) in _SYSTEM_MOUNTS or paths.is_block_device(w.value) and w.value.endswith(("a1", "a2")):
            return Finding(DES, f"{call.prog} {w.value} detaches a filesystem the system runs on")
    if s.has("-h", "--help", "-V", "--version"):
        return Finding(RO, f"{call.prog} only prints")
    return Finding(CHANGE, f"{call.prog} detaches a filesystem")


def mount(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "tOoLUTNB", opts("--types", "--options", "--label", "--uuid", "--target", "--source",
                                           "--fstab", "--namespace", "--bind", "--move", "--rbind"))
    options = ",".join(w.value for w in s.values.get("-o", []) + s.values.get("--options", []))
    if not s.operands and (not s.has("-a", "--all") or s.has("-l", "-V", "--version", "-h", "--help", "--show")) \
            and not options:
        return Finding(RO, f"{call.prog} only lists")
    if "remount" in options and re.search(r"(^|,)ro(,|$)", options) and any(paths.norm(w.value) in _SYSTEM_MOUNTS for w in s.operands):
        return Finding(DES, f"{call.prog} -o remount,ro makes a system filesystem read-only")
    if s.has("--move", "--bind", "--rbind") and any(paths.norm(w.value) in _SYSTEM_MOUNTS for w in s.operands[1:]):
        return Finding(DES, f"{call.prog} covers a system directory with another filesystem")
    if len(s.operands) > 1 and paths.norm(s.operands[-1].value) in _SYSTEM_MOUNTS - {"/proc", "/sys", "/dev", "/run"}:
        return Finding(DES, f"{call.prog} mounts over {s.operands[-1].value}, hiding what the system runs on")
    return Finding(CHANGE, f"{call.prog} attaches a filesystem")


def swap(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "po", opts("--priority", "--options", "--output"))
    if call.prog == "swapoff":
        return Finding(CHANGE, "swapoff disables swap")
    if (not s.operands and not s.has("-a", "--all")) or s.has("-s", "--summary", "--show"):
        return Finding(RO, f"{call.prog} only lists")
    return Finding(CHANGE, f"{call.prog} changes swap")


__all__ = ["DES"]
