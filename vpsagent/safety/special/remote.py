"""Tools that run commands on other machines or hand them to the network: ansible, salt,
pssh, socat, and service CLIs (gh, kubeadm) with a delete verb."""

from __future__ import annotations

import re

from vpsagent.safety.analyze import Call, Outcome
from vpsagent.safety.model import CHANGE, DES, RO, UNKNOWN, Finding
from vpsagent.safety.table import Program, opts, scan

# ansible modules whose arguments are a command line
_COMMAND_MODULES = frozenset({"shell", "command", "raw", "ansible.builtin.shell", "ansible.builtin.command",
                              "ansible.builtin.raw", "script"})
_READ_MODULES = frozenset({"ping", "setup", "gather_facts", "stat", "debug", "ansible.builtin.ping",
                           "ansible.builtin.setup", "service_facts", "package_facts", "slurp", "find", "uri"})


def ansible(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "aeimfuMtkKbsclTB", opts("--args", "--extra-vars", "--inventory", "--module-name", "--forks",
                                                  "--user", "--module-path", "--tree", "--limit", "--become-user",
                                                  "--become-method", "--connection", "--timeout", "--private-key",
                                                  "--vault-password-file"))
    if s.has("--list-hosts", "--syntax-check", "--version"):
        return Finding(RO, "ansible --list-hosts only lists")
    module = (s.value("-m", "--module-name").value if s.value("-m", "--module-name") else "command")  # type: ignore[union-attr]
    args = s.value("-a", "--args")
    text = args.value if args is not None else ""
    if module in _COMMAND_MODULES:
        if not text:
            return Finding(UNKNOWN, f"ansible -m {module} without a command")
        return Finding(UNKNOWN, f"ansible -m {module} runs `{text[:40]}` on many hosts").worst(
            call.shell(text, f"ansible -m {module}"))
    if re.search(r"\bstate=absent\b", text) or module.endswith(("file", "user", "group")) and "absent" in text:
        return Finding(DES, f"ansible -m {module} -a '{text[:40]}' removes what it names")
    if module in _READ_MODULES:
        return Finding(RO, f"ansible -m {module} only reads")
    return Finding(UNKNOWN, f"ansible -m {module} runs a module the gate cannot judge")


def salt(call: Call, spec: Program) -> Outcome:
    words = [w.value for w in call.args if not w.value.startswith("-")]
    fn = words[1] if len(words) > 1 else ""
    rest = " ".join(words[2:])
    if fn in ("cmd.run", "cmd.run_all", "cmd.shell", "cmd.script"):
        return Finding(UNKNOWN, f"salt {fn} runs `{rest[:40]}` on many minions").worst(call.shell(rest, f"salt {fn}"))
    if re.search(r"\.(remove|delete|absent|purge|rmdir|wipe)\b", fn):
        return Finding(DES, f"salt {fn} deletes on the minions")
    if re.search(r"^(test\.ping|test\.version|grains\.\w+|pillar\.(get|items)|\w+\.(list\w*|get|show\w*|status|info))$", fn):
        return Finding(RO, f"salt {fn} only reads")
    return Finding(UNKNOWN, f"salt {fn or ''} runs a function the gate cannot judge")


def pssh(call: Call, spec: Program) -> Outcome:
    """pssh/parallel-ssh: the last operand is a command line run on every host."""
    s, _ = scan(call.args, "hHlpotOxXIe", opts("--hosts", "--host", "--user", "--par", "--outdir", "--errdir",
                                            "--timeout", "--option", "--extra-args", "--extra-arg"))
    if not s.operands:
        return Finding(UNKNOWN, f"{call.prog} reads its command from input")
    code = s.operands[-1].value
    return Finding(CHANGE, f"{call.prog} runs a command on many hosts").worst(
        call.shell(code, f"the command {call.prog} runs on every host"))


def socat(call: Call, spec: Program) -> Outcome:
    for w in call.args:
        m = re.match(r"(?i)(exec|system):(.*?)(,|$)", w.value)
        if m is not None:
            return Finding(DES, f"socat {m.group(1)}: connects `{m.group(2)[:40]}` to another stream (a backdoor)")
    return Finding(UNKNOWN, "socat connects streams")


def gh(call: Call, spec: Program) -> Outcome:
    words = [w.value for w in call.args if not w.value.startswith("-")]
    verb = words[1] if len(words) > 1 else (words[0] if words else "")
    if verb in ("delete", "archive", "close"):
        return Finding(DES if verb == "delete" else CHANGE, f"gh {' '.join(words[:2])} {'deletes' if verb == 'delete' else 'changes'} on GitHub")
    if verb in ("list", "view", "status", "diff", "checks", "ls") or words[:1] in (["status"], ["auth"], ["api"]) and verb in ("status", ""):
        return Finding(RO, f"gh {' '.join(words[:2])} only reads")
    return Finding(CHANGE, f"gh {' '.join(words[:2])} changes something on GitHub")


__all__ = ["DES", "RO"]
