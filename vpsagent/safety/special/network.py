"""Firewalls, routes and interfaces: what can lock everyone out (flushes, DROP on SSH or on
all input, a default route deleted, an interface taken down) is destructive."""

from __future__ import annotations

import re

from vpsagent.safety.analyze import Call, Outcome
from vpsagent.safety.model import CHANGE, DES, RO, UNKNOWN, Finding
from vpsagent.safety.table import Program, opts, scan

_IPT_LONG = {"--flush": "F", "--delete-chain": "X", "--policy": "P", "--zero": "Z", "--append": "A", "--insert": "I",
             "--delete": "D", "--replace": "R", "--new-chain": "N", "--list": "L", "--list-rules": "S", "--check": "C",
             "--rename-chain": "E"}
_SSH_PORT = re.compile(r"(^|[,:\s])(22|ssh)([,:\s]|$)")


def _ipt_commands(vals: list[str]) -> set[str]:
    cmds: set[str] = set()
    for v in vals:
        if v.startswith("--"):
            cmds.add(_IPT_LONG.get(v.split("=")[0], ""))
        elif v.startswith("-") and len(v) > 1 and not v[1:].isdigit():
            for ch in v[1:]:
                if ch in "FXPZAIDRNLSCE":
                    cmds.add(ch)
                if ch in "tjmpsdio":  # options with a value: the rest of the cluster is the value
                    break
    cmds.discard("")
    return cmds


def _value_after(vals: list[str], *names: str) -> str | None:
    for i, v in enumerate(vals):
        if v in names and i + 1 < len(vals):
            return vals[i + 1]
        for n in names:
            if n.startswith("--") and v.startswith(n + "="):
                return v.split("=", 1)[1]
    return None


def iptables(call: Call, spec: Program) -> Outcome:
    vals = call.values
    cmds = _ipt_commands(vals)
    if cmds & {"F", "X"}:
        return Finding(DES, f"{call.prog} -F/-X flushes the firewall rules")
    if "P" in cmds:
        i = next(i for i, v in enumerate(vals) if v in ("-P", "--policy"))
        chain, target = (vals[i + 1:i + 3] + ["", ""])[:2]
        if target.upper() in ("DROP", "REJECT") and chain.upper() != "FORWARD":
            return Finding(DES, f"{call.prog} -P {chain} {target} can lock everyone out of the server")
        return Finding(CHANGE, f"{call.prog} -P sets a chain policy")
    if cmds & {"A", "I", "R"}:
        return _ipt_rule(call.prog, vals)
    if cmds and cmds <= {"L", "S", "C"}:
        return Finding(RO, f"{call.prog} -L/-S only lists rules")
    if not cmds:
        return Finding(RO, f"{call.prog} without a command changes nothing")
    return Finding(CHANGE, f"{call.prog} changes firewall rules")


def _ipt_rule(prog: str, vals: list[str]) -> Finding:
    target = (_value_after(vals, "-j", "--jump") or "").upper()
    chain = (_value_after(vals, "-A", "--append", "-I", "--insert", "-R", "--replace") or "").upper()
    if target not in ("DROP", "REJECT") or chain not in ("INPUT", "OUTPUT"):
        return Finding(CHANGE, f"{prog} changes firewall rules")
    port = _value_after(vals, "--dport", "--destination-port", "--dports", "--sport") or ""
    source = _value_after(vals, "-s", "--source", "-d", "--destination") or ""
    if _SSH_PORT.search(port) or (not port and not source and "--state" not in vals and "--ctstate" not in vals):
        return Finding(DES, f"{prog} {chain} {target} {'on SSH' if port else 'on all traffic'} locks everyone out")
    return Finding(CHANGE, f"{prog} adds a {target} rule")


def nft(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "fIo", opts("--file", "--includepath"))
    words = [w.lower() for w in (x.value for x in s.operands)]
    text = " ".join(words)
    if s.value("-f", "--file") is not None:
        return Finding(RO if s.has("-c", "--check") else CHANGE, "nft -f loads a ruleset")
    if not words:
        return Finding(UNKNOWN, "nft opens an interactive shell") if s.has("-i", "--interactive") else Finding(RO, "nft only prints")
    if words[0] in ("list", "describe", "monitor"):
        return Finding(RO, "nft list only reads")
    if words[0] in ("flush", "delete", "destroy") and len(words) > 1 and words[1] in ("ruleset", "table", "chain"):
        return Finding(DES, f"nft {' '.join(words[:2])} removes firewall rules")
    if re.search(r"\b(drop|reject)\b", text) and re.search(r"\binput\b|\bhook input\b", text) and \
            (re.search(r"dport\s+(\{[^}]*\b22\b[^}]*\}|(22|ssh)\b)", text) or not re.search(r"\b(saddr|daddr|dport|sport|ct state)\b", text)):
        return Finding(DES, "nft adds a drop on input that locks everyone out")
    if re.search(r"\bpolicy\s+drop\b", text):
        return Finding(DES, "nft sets an input policy of drop")
    return Finding(CHANGE, f"nft {words[0]} changes firewall rules")


def ufw(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args)
    vals = [w.value for w in s.operands]
    if not vals or vals[0] in ("status", "version", "show") or vals[:2] in (["app", "list"], ["app", "info"]):
        return Finding(RO, "ufw only reads")
    text = " ".join(vals).lower()
    if vals[0] in ("disable", "reset"):
        return Finding(DES, f"ufw {vals[0]} removes the firewall")
    if re.search(r"\b(deny|reject)\b", text) and (re.search(r"\b(22|ssh|openssh)\b", text) or re.fullmatch(r"(insert \d+ )?(deny|reject)( in)?", text)):
        return Finding(DES, "ufw denies SSH and locks everyone out")
    if vals[0] == "delete" and re.search(r"\ballow\b.*\b(22|ssh|openssh)\b", text):
        return Finding(DES, "ufw delete removes the rule that lets SSH in")
    if vals[0] == "default" and re.search(r"\b(deny|reject)\b.*\boutgoing\b", text):
        return Finding(DES, "ufw default deny outgoing cuts the server off")
    return Finding(CHANGE, f"ufw {vals[0]} changes firewall rules")


def firewall_cmd(call: Call, spec: Program) -> Outcome:
    vals = call.values
    text = " ".join(vals).lower()
    if any(v.startswith("--panic-on") for v in vals):
        return Finding(DES, "firewall-cmd --panic-on drops all traffic")
    if re.search(r"--remove-(service|port)[= ](ssh|22/tcp)\b", text) or re.search(r"--set-default-zone[= ](drop|block)\b", text):
        return Finding(DES, "firewall-cmd removes SSH or drops everything")
    if "rich-rule" in text and re.search(r"\b(drop|reject)\b", text) and re.search(r"\b(22|ssh)\b", text):
        return Finding(DES, "firewall-cmd adds a rule that drops SSH")
    if vals and all(re.match(r"--(list|get|query|state|zone|permanent|info|version|help|check-config)", v) for v in vals):
        return Finding(RO, "firewall-cmd query only reads")
    return Finding(CHANGE, "firewall-cmd changes firewall rules")


_IP_READ = frozenset({"show", "list", "ls", "lst", "get", "sh", "s", "l", "help", "sho", "li"})


def ip(call: Call, spec: Program) -> Outcome:
    # ip's options are whole words (-br is -brief, not -b -r)
    i = 0
    args = call.args
    while i < len(args) and args[i].value.startswith("-"):
        if args[i].value in ("-b", "-batch", "--batch", "-force"):
            return Finding(UNKNOWN, "ip -batch runs commands from a file")
        i += 2 if args[i].value in ("-f", "-family", "-n", "-netns", "-rc", "-rcvbuf", "-l", "-loops") else 1
    rest = args[i:]
    if not rest:
        return Finding(RO, "ip shows help")
    obj = rest[0].value
    vals = [w.value for w in rest[1:]]
    action = vals[0] if vals else "show"
    if action in _IP_READ or obj in ("monitor", "mon") or not vals or vals[0].startswith("-") \
            or vals[0] in ("dev", "to", "table", "scope", "up"):
        return Finding(RO, f"ip {obj} {action} only reads")
    if obj in ("link", "l", "li") and (action == "set" and "down" in vals or action in ("delete", "del")):
        return Finding(DES, f"ip link {action} … can cut off remote access")
    if obj in ("addr", "a", "address", "route", "r", "ro", "rou") and action in ("flush", "f", "fl"):
        return Finding(DES, f"ip {obj} flush can cut off remote access")
    if obj in ("route", "r", "ro", "rou") and action in ("del", "delete", "d") and "default" in vals:
        return Finding(DES, "ip route del default cuts the server off the network")
    if obj in ("addr", "a", "address") and action in ("del", "delete", "d"):
        return Finding(DES, "ip addr del can remove the address you are connected to")
    return Finding(CHANGE, f"ip {obj} {action} changes network configuration")


def ifconfig(call: Call, spec: Program) -> Outcome:
    vals = call.values
    if len(vals) <= 1 or vals in (["-a"], ["-s"]):
        return Finding(RO, "ifconfig only reads")
    if "down" in vals:
        return Finding(DES, "ifconfig … down can cut off remote access")
    return Finding(CHANGE, "ifconfig changes network configuration")


def route(call: Call, spec: Program) -> Outcome:
    vals = [v for v in call.values if not v.startswith("-")]
    if not vals:
        return Finding(RO, "route only lists routes")
    if vals[0] in ("del", "delete") and "default" in vals:
        return Finding(DES, "route del default cuts the server off the network")
    if vals[0] in ("flush",):
        return Finding(DES, "route flush removes every route")
    return Finding(CHANGE, f"route {vals[0]} changes routes")


_NMCLI_OFF = frozenset({"down", "disconnect", "off", "delete", "del"})
_NMCLI_CHANGE = frozenset({"modify", "mod", "m", "up", "add", "connect", "set", "reload", "load", "import", "on",
                           "edit", "clone", "hostname", "rescan", "reapply", "monitor"})


def nmcli(call: Call, spec: Program) -> Outcome:
    vals = [w.value for w in call.args if not w.value.startswith("-")]
    if any(v in _NMCLI_OFF for v in vals):
        return Finding(DES, "nmcli takes a connection down or deletes it")
    if any(v in _NMCLI_CHANGE for v in vals) and "monitor" not in vals:
        return Finding(CHANGE, "nmcli changes network connections")
    return Finding(RO, "nmcli only reads")
