"""Package managers: installing and removing packages are changes; purging (which deletes
configuration and data) and removing what the server needs to boot or be reached are destructive."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from vpsagent.safety.analyze import Call, Outcome
from vpsagent.safety.model import CHANGE, DES, RO, Finding
from vpsagent.safety.table import Program, judge, scan

CRITICAL_PACKAGES = frozenset({
    "openssh-server", "openssh", "ssh", "sudo", "systemd", "libc6", "glibc", "bash", "coreutils", "apt", "dpkg", "rpm",
    "dnf", "yum", "linux-image-generic", "grub-pc", "grub2", "grub-efi-amd64", "grub-common", "grub2-common", "init",
    "util-linux", "login", "passwd", "base-files", "python3", "openssl", "libssl3", "network-manager", "netplan.io",
    "ifupdown", "kernel", "kernel-core", "systemd-sysv", "libpam0g", "pam", "shadow-utils", "e2fsprogs", "lvm2",
    "cloud-init", "iproute2", "procps", "openssh-clients", "libc-bin", "dash", "sed", "grep", "tar", "gzip",
})
_REMOVE_WORDS = frozenset({"remove", "erase", "autoremove", "rm", "uninstall", "del", "purge", "autopurge"})


def _critical(pkgs: Sequence[str]) -> str | None:
    for p in pkgs:
        name = re.split(r"[=:<>]", p, maxsplit=1)[0]
        if name in CRITICAL_PACKAGES or name.startswith(("linux-image", "kernel", "openssh", "grub", "systemd", "libc")):
            return name
    return None


def removal(prog: str, verb: str, pkgs: Sequence[str], purge: bool) -> Finding:
    name = _critical(pkgs)
    if name is not None:
        return Finding(DES, f"{prog} {verb} {name} can break the system or remote access")
    if purge:
        return Finding(DES, f"{prog} {verb} purges packages and deletes their configuration and data")
    return Finding(CHANGE, f"{prog} {verb} removes packages")


def apt(call: Call, spec: Program) -> Outcome:
    base = judge(call, replace(spec, handler=None))
    s, _ = scan(call.args, spec.with_arg, spec.long_with_arg)
    words = [w.value for w in s.operands]
    if base.risk is RO or not words or words[0] not in _REMOVE_WORDS:
        return base
    purge = words[0] in ("purge", "autopurge") or s.has("--purge")
    return removal(call.prog, words[0], words[1:], purge)


_DPKG_READ = frozenset({"-l", "--list", "-L", "--listfiles", "-s", "--status", "-S", "--search", "-p", "--print-avail",
                        "--get-selections", "-c", "--contents", "-I", "--info", "--print-architecture",
                        "--print-foreign-architectures", "--compare-versions", "--version", "-V", "--verify", "-C",
                        "--audit", "--help", "-f", "--field", "-W", "--show", "--assert-multi-arch", "-?"})


def dpkg(call: Call, spec: Program) -> Outcome:
    vals = call.values
    first = next((v for v in vals if v.startswith("-")), "")
    if first.split("=")[0] in _DPKG_READ:
        return Finding(RO, f"{call.prog} {first} only reads")
    if first in ("-P", "--purge"):
        return removal(call.prog, first, [v for v in vals if not v.startswith("-")], True)
    if first in ("-r", "--remove"):
        return removal(call.prog, first, [v for v in vals if not v.startswith("-")], False)
    return judge(call, replace(spec, handler=None))


def rpm(call: Call, spec: Program) -> Outcome:
    vals = call.values
    if any(re.fullmatch(r"-e\w*|--erase", v) for v in vals):
        if "--test" in vals:
            return Finding(RO, "rpm --test changes nothing")
        return removal(call.prog, "-e", [v for v in vals if not v.startswith("-")], False)
    if vals and (re.fullmatch(r"-q\w*", vals[0]) or vals[0] in ("--query", "-V", "--verify", "--eval", "-E", "-K",
                                                                  "--checksig", "--version", "--querytags", "--showrc")):
        return Finding(RO, f"{call.prog} query only reads")
    return judge(call, replace(spec, handler=None))


def yum(call: Call, spec: Program) -> Outcome:
    base = judge(call, replace(spec, handler=None))
    s, _ = scan(call.args, spec.with_arg, spec.long_with_arg)
    words = [w.value for w in s.operands]
    if base.risk is RO or not words or words[0] not in _REMOVE_WORDS:
        return base
    return removal(call.prog, words[0], words[1:], False)


def pacman(call: Call, spec: Program) -> Outcome:
    vals = call.values
    op = next((v for v in vals if re.fullmatch(r"-[A-Za-z]+", v)), "")
    pkgs = [v for v in vals if not v.startswith("-")]
    if re.fullmatch(r"-(Q|F)\w*|-S[sigl]\w*", op) or op in ("-V", "--version", "-h", "--help"):
        return Finding(RO, "pacman query only reads")
    if op.startswith("-R"):
        return removal("pacman", op, pkgs, "n" in op)
    return Finding(CHANGE, "pacman changes installed packages")


def snap(call: Call, spec: Program) -> Outcome:
    base = judge(call, replace(spec, handler=None))
    vals = call.values
    if vals[:1] == ["remove"]:
        return removal("snap", "remove", [v for v in vals[1:] if not v.startswith("-")], "--purge" in vals)
    return base


def apk(call: Call, spec: Program) -> Outcome:
    base = judge(call, replace(spec, handler=None))
    vals = call.values
    words = [v for v in vals if not v.startswith("-")]
    if words[:1] == ["del"]:
        return removal("apk", "del", words[1:], "--purge" in vals)
    return base


def flatpak(call: Call, spec: Program) -> Outcome:
    base = judge(call, replace(spec, handler=None))
    vals = call.values
    if any(v in ("uninstall", "remove") for v in vals[:2]) and "--delete-data" in vals:
        return Finding(DES, "flatpak uninstall --delete-data deletes application data")
    return base


__all__ = ["RO"]
