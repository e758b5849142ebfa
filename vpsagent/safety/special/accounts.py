"""Accounts and cron: locking an account's password, shell or expiry is a lock-out;
deleting accounts and replacing or removing a whole crontab lose what was there."""

from __future__ import annotations

import re

from vpsagent.safety.analyze import Call, Outcome
from vpsagent.safety.model import CHANGE, DES, RO, UNKNOWN, Finding
from vpsagent.safety.parse import Word
from vpsagent.safety.table import Program, opts, scan

_NO_LOGIN = re.compile(r"(^|/)(nologin|false|true)$")


# root and the login accounts cloud images create: locking one of them is locking the admin out
_ADMIN_USERS = frozenset({"root", "0", "ubuntu", "admin", "ec2-user", "debian", "centos", "fedora", "rocky",
                          "almalinux", "azureuser", "opc", "core", "cloud-user", "pi", "vagrant", "alpine", "arch"})


def _admin(user: str | None) -> bool:
    """Root or a cloud image's admin, or an account the command does not name (the caller's own)."""
    return user is None or user in _ADMIN_USERS or user.startswith("$")


def passwd(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "nxwi", opts("--mindays", "--maxdays", "--warndays", "--inactive", "--root", "--repository"))
    if s.has("-S", "--status", "-a", "--all") and not s.has("-l", "-d", "-e"):
        return Finding(RO, "passwd -S only reads")
    user = s.operands[-1].value if s.operands else None
    if s.has("-l", "--lock", "-d", "--delete"):
        if _admin(user):
            return Finding(DES, f"passwd -l/-d locks or empties {user or 'your own'} password (a lock-out)")
        return Finding(CHANGE, f"passwd -l/-d locks or empties the password of {user}")
    if s.has("-e", "--expire"):
        return Finding(CHANGE, f"passwd -e makes {user or 'the user'} choose a new password at the next login")
    return Finding(CHANGE, "passwd changes a password")


def usermod(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "cdefgGlpsuRPZ", opts("--comment", "--home", "--expiredate", "--inactive", "--gid", "--groups",
                                              "--login", "--password", "--shell", "--uid", "--root", "--prefix",
                                              "--selinux-user", "--add-subuids", "--del-subuids"))
    shell = s.value("-s", "--shell")
    expire = s.value("-e", "--expiredate")
    user = s.operands[-1].value if s.operands else None
    if s.has("-L", "--lock") or (shell is not None and _NO_LOGIN.search(shell.value)):
        risk = DES if _admin(user) else CHANGE
        return Finding(risk, f"{call.prog} locks {user or 'the account'} or takes away its shell" + (" (a lock-out)" if risk is DES else ""))
    if expire is not None and expire.value not in ("", "-1", "99999"):
        return Finding(DES, f"{call.prog} -e expires the account (a lock-out)")
    groups = s.value("-G", "--groups")
    if groups is not None and not s.has("-a", "--append"):
        return Finding(DES, f"{call.prog} -G without -a replaces {user or 'the'}'s groups (sudo and admin rights can go)")
    if s.has("-p", "--password"):
        return Finding(CHANGE, f"{call.prog} -p replaces the password hash")
    return Finding(CHANGE, f"{call.prog} changes an account")


def chage(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "dEImMWR", opts("--lastday", "--expiredate", "--inactive", "--mindays", "--maxdays",
                                        "--warndays", "--root"))
    if s.has("-l", "--list"):
        return Finding(RO, "chage -l only reads")
    expire = s.value("-E", "--expiredate")
    last = s.value("-d", "--lastday")
    if expire is not None and expire.value not in ("-1", "") or last is not None and last.value == "0" \
            and s.value("-M", "--maxdays") is not None:
        return Finding(DES, "chage -E expires the account (a lock-out)")
    return Finding(CHANGE, "chage changes password aging")


def chsh(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "sR", opts("--shell", "--root"))
    shell = s.value("-s", "--shell")
    if s.has("-l", "--list-shells"):
        return Finding(RO, "chsh -l only lists shells")
    if shell is not None and _NO_LOGIN.search(shell.value):
        return Finding(DES, "chsh to nologin/false takes away the account's shell (a lock-out)")
    return Finding(CHANGE, "chsh changes a login shell")


def crontab(call: Call, spec: Program) -> Outcome:
    from vpsagent.safety.scripts import crontab_commands

    s, _ = scan(call.args, "usT", opts())
    if s.has("-r"):
        return Finding(DES, "crontab -r deletes the whole crontab")
    if s.has("-l", "-T"):
        return Finding(RO, "crontab -l only lists")
    if s.has("-e"):
        return Finding(UNKNOWN, "crontab -e opens an interactive editor on the crontab")
    source = s.operands[0] if s.operands else None
    if source is not None and source.value == "/dev/null":
        return Finding(DES, "crontab /dev/null deletes every scheduled job")
    base = Finding(UNKNOWN, "crontab replaces the whole crontab with code that runs later")
    if source is not None and source.value != "-":
        return base.worst(call.script(source, f"the crontab file {source.value}", "crontab"))
    if call.feed.kind == "data":
        text = call.feed.data.decode("utf-8", "replace")
        out = Finding(DES, "crontab - replaces the whole crontab with what is piped in (its current jobs are lost)")
        for line in crontab_commands(text, with_user=False):
            out = out.worst(call.shell(line, "the new crontab"))
        return out
    if call.feed.kind == "unseen":
        if not call.feed.data.strip():
            return Finding(DES, f"crontab replaces the whole crontab with `{call.feed.source}`, which cannot be seen")
        out = base
        for line in crontab_commands(call.feed.data.decode("utf-8", "replace"), with_user=False):
            out = out.worst(call.shell(line, "the new crontab"))
        return out
    if call.feed.kind == "file" and call.feed.piped:
        return base.worst(call.script(Word.plain(call.feed.path), "the new crontab", "crontab"))
    return Finding(UNKNOWN, "crontab reads a new crontab from its input")


_ADMIN_GROUPS = frozenset({"sudo", "wheel", "admin", "adm", "root", "sudoers"})


def gpasswd(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "adMAQ", opts("--add", "--delete", "--members", "--administrators", "--root"))
    group = s.operands[-1].value if s.operands else ""
    if (s.value("-d", "--delete") is not None or s.value("-M", "--members") is not None) and group in _ADMIN_GROUPS:
        return Finding(DES, f"gpasswd removes members from {group} (admin rights are lost: a lock-out)")
    return Finding(CHANGE, "gpasswd changes a group")


def chpasswd(call: Call, spec: Program) -> Outcome:
    if call.feed.kind == "data" and re.search(rb"^[^:\n]+:[!*]", call.feed.data, re.M):
        return Finding(DES, "chpasswd sets a locked password hash (a lock-out)")
    return Finding(CHANGE, "chpasswd changes passwords")


def userdel(call: Call, spec: Program) -> Outcome:
    return Finding(DES, f"{call.prog} deletes an account (and possibly its files)")


__all__ = ["RO"]
