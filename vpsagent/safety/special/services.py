"""Services, processes and power: stopping what keeps the server reachable is destructive."""

from __future__ import annotations

import re
from dataclasses import replace

from vpsagent.safety.analyze import Call, Outcome
from vpsagent.safety.model import CHANGE, DES, RO, Finding
from vpsagent.safety.parse import Word
from vpsagent.safety.table import Program, judge, opts, scan

SSH_UNITS = frozenset({"ssh", "sshd", "ssh.socket", "sshd.socket", "openssh-server", "dropbear", "openssh"})
NETWORK_UNITS = frozenset({"networking", "network", "networkmanager", "systemd-networkd", "network-manager",
                           "wicked", "netplan", "systemd-networkd.socket", "dbus", "dbus-broker", "systemd-logind",
                           "systemd-journald", "systemd-resolved", "firewalld", "nftables", "iptables", "ufw"})
CRITICAL_PROCESSES = re.compile(r"^\^?(sshd?|systemd\S*|init|dbus\S*|NetworkManager|networkd|journald|"
                                r"containerd|dockerd|sshd:.*|agetty|login)\$?$")
_CUT_OFF_VERBS = frozenset({"stop", "disable", "mask", "kill", "try-restart", "freeze"})
_POWER = frozenset({"poweroff", "reboot", "halt", "kexec", "emergency", "rescue", "isolate", "suspend", "hibernate",
                    "hybrid-sleep", "suspend-then-hibernate", "soft-reboot", "default", "switch-root", "exit"})


def unit(name: str) -> str:
    n = name.lower()
    for suffix in (".service", ".target"):
        if n.endswith(suffix):
            n = n[: -len(suffix)]
    return n


def systemctl(call: Call, spec: Program) -> Outcome:
    base = judge(call, replace(spec, handler=None))
    s, rest = scan(call.args, spec.with_arg, spec.long_with_arg, stop_at_operand=True)
    if not rest or base.risk is RO:
        return base
    verb = rest[0].value
    units = [unit(w.value) for w in rest[1:] if not w.value.startswith("-")]
    if verb in _POWER:
        return Finding(DES, f"systemctl {verb} takes the whole server down or changes its state")
    if verb == "set-default" and any(u in ("rescue", "emergency", "poweroff", "reboot") for u in units):
        return Finding(DES, f"systemctl set-default {units[0]} makes the server boot without its services")
    if verb in _CUT_OFF_VERBS or (verb == "disable" and s.has("--now")):
        cut = [u for u in units if u in SSH_UNITS or u in NETWORK_UNITS or u in ("*", "--all")]
        if cut:
            return Finding(DES, f"systemctl {verb} {cut[0]} can cut off remote access to the server")
    return base


def service(call: Call, spec: Program) -> Outcome:
    vals = call.values
    if not vals or vals[0] in ("--status-all", "--help", "--version", "-h"):
        return Finding(RO, "service lists services")
    name = unit(vals[0])
    action = vals[1] if len(vals) > 1 else ""
    if action in ("status", ""):
        return Finding(RO, f"service {name} status only reads")
    if action == "stop" and (name in SSH_UNITS or name in NETWORK_UNITS):
        return Finding(DES, f"service {name} stop can cut off remote access to the server")
    return Finding(CHANGE, f"service {name} {action} changes a service")


def _critical_target(w: Word) -> bool:
    if w.dynamic:
        # `$(pgrep sshd)`, xargs fed by `pgrep sshd`, or every process (`ps -e -o pid=` unfiltered)
        if re.search(r"\b(sshd?|systemd|init|dbus)\b", w.value):
            return True
        return bool(re.search(r"\bps\b", w.value)) and not re.search(r"grep|awk|sed|head|tail|pgrep|pidof|\s-[pCuU]\b|--pid", w.value)
    return w.value in ("1", "-1", "0") or w.value.startswith("-") and w.value[1:].isdigit() and w.value != "-0"


def kill(call: Call, spec: Program) -> Outcome:
    vals = call.values
    if not vals or vals[0] in ("-l", "-L", "--list", "--table"):
        return Finding(RO, "kill -l only lists signals")
    i, signal = 0, ""
    if vals[0] in ("-s", "-n", "--signal") and len(vals) > 1:
        signal, i = vals[1], 2
    elif vals[0].startswith("-") and vals[0] != "--":
        signal, i = vals[0].lstrip("-"), 1  # the first dash word is the signal: `kill -1 123` is SIGHUP
    targets = [w for w in call.args[i:] if w.value != "--"]
    if signal in ("0", "s0"):
        return Finding(RO, "kill -0 only checks that a process exists")
    if any(_critical_target(w) for w in targets):
        return Finding(DES, "kill of PID 1, of every process (-1), or of sshd/systemd takes the server or access down")
    if any(w.dynamic for w in targets):
        return Finding(CHANGE, "kill signals processes chosen at run time")
    return Finding(CHANGE, f"kill signals process {' '.join(w.value for w in targets)}")


def pkill(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "uUgGPstFe", opts("--signal", "--euid", "--uid", "--parent", "--session", "--terminal",
                                          "--pidfile", "--group", "--pgroup", "--ns", "--nslist"))
    signal = s.value("-s", "--signal")
    if signal is not None and signal.value in ("0", "SIG0") or any(f in ("-0",) for f in s.flags):
        return Finding(RO, f"{call.prog} -0 only checks that processes exist")
    names = [w.value for w in s.operands]
    if any(CRITICAL_PROCESSES.match(n) or re.fullmatch(r"\^?\.\*?\$?|\.|\^|\$|\.\+", n) for n in names):
        return Finding(DES, f"{call.prog} {' '.join(names)} can kill sshd, systemd or every process")
    user = s.value("-u", "--euid", "-U", "--uid")
    if user is not None and user.value in ("root", "0"):
        return Finding(DES, f"{call.prog} -u root kills system processes")
    return Finding(CHANGE, f"{call.prog} signals processes matching {' '.join(names)}")


def killall(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "sunyoZ", opts("--signal", "--user", "--older-than", "--younger-than", "--context", "--ns"))
    if s.has("-l", "--list", "-V", "--version") or s.has("--help"):
        return Finding(RO, f"{call.prog} -l only lists signals")
    signal = s.value("-s", "--signal")
    if s.has("-0") or (signal is not None and signal.value in ("0", "SIG0")):
        return Finding(RO, f"{call.prog} -0 only checks that processes exist")
    names = " ".join(w.value for w in s.operands)
    return Finding(DES, f"{call.prog} kills every process {'named ' + names if names else 'on the machine'}")


def fuser(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "n", opts("--namespace"))
    if not s.has("-k", "--kill"):
        return Finding(RO, "fuser only lists the processes using a file")
    for w in s.operands:
        if w.value in ("/", "22/tcp", "ssh/tcp") or (s.has("-m", "--mount") and w.value in ("/", "/usr", "/var", "/home")):
            return Finding(DES, f"fuser -k {w.value} kills what keeps the server or access running")
    if s.has("-i", "--interactive"):
        return Finding(CHANGE, "fuser -k asks before killing processes")
    return Finding(CHANGE, f"fuser -k kills the processes using {' '.join(w.value for w in s.operands)}")


def power(call: Call, spec: Program) -> Outcome:
    vals = call.values
    if call.prog == "shutdown" and any(v in ("-c", "--cancel") for v in vals):
        return Finding(CHANGE, "shutdown -c cancels a pending shutdown")
    if vals in (["--help"], ["--version"]):
        return Finding(RO, f"{call.prog} {vals[0]} only prints")
    if call.prog == "shutdown" and "-k" in vals:
        return Finding(CHANGE, "shutdown -k only warns the users")
    return Finding(DES, f"{call.prog} takes the whole server down")


def init(call: Call, spec: Program) -> Outcome:
    vals = call.values
    if vals and vals[0] in ("0", "1", "6", "s", "S", "single", "emergency"):
        return Finding(DES, f"{call.prog} {vals[0]} halts, reboots or isolates the server")
    if vals and vals[0] in ("--help", "--version"):
        return Finding(RO, f"{call.prog} {vals[0]} only prints")
    if vals and vals[0] in ("q", "Q", "u", "U"):
        return Finding(CHANGE, f"{call.prog} {vals[0]} reloads init")
    return Finding(CHANGE, f"{call.prog} changes the run level")
