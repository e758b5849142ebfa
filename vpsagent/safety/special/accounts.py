"""Accounts and cron: locking an account's password, shell or expiry is a lock-out;
deleting accounts and replacing or removing a whole crontab lose what was there."""

from __future__ import annotations

import re

from vpsagent.safety.analyze import Call, Outcome
from vpsagent.safety.model import CHANGE, DES, RO, UNKNOWN, Finding
from vpsagent.safety.table import Program, opts, scan

_NO_LOGIN = re.compile(r"(^|/)(nologin|false|true)$")


def passwd(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "nxwi", opts("--mindays", "--maxdays", "--warndays", "--inactive", "--root", "--repository"))
    if s.has("-S", "--status", "-a", "--all") and not s.has("-l", "-d", "-e"):
        return Finding(RO, "passwd -S only reads")
    if s.has("-l", "--lock", "-d", "--delete", "-e", "--expire"):
        return Finding(DES, "passwd -l/-d/-e locks, empties or expires a password (a lock-out)")
    return Finding(CHANGE, "passwd changes a password")


def usermod(call: Call, spec: Program) -> Outcome:
    s, _ = scan(call.args, "cdefgGlpsuRPZ", opts("--comment", "--home", "--expiredate", "--inactive", "--gid", "--groups",
                                              "--login", "--password", "--shell", "--uid", "--root", "--prefix",
                                              "--selinux-user", "--add-subuids", "--del-subuids"))
    shell = s.value("-s", "--shell")
    expire = s.value("-e", "--expiredate")
    if s.has("-L", "--lock") or (shell is not None and _NO_LOGIN.search(shell.value)):
        return Finding(DES, f"{call.prog} locks the account or takes away its shell (a lock-out)")
    if expire is not None and expire.value not in ("", "-1", "99999"):
        return Finding(DES, f"{call.prog} -e expires the account (a lock-out)")
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
        return Finding(CHANGE, "crontab -e edits the crontab")
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
        return base
    return Finding(UNKNOWN, "crontab reads a new crontab from its input")


def userdel(call: Call, spec: Program) -> Outcome:
    return Finding(DES, f"{call.prog} deletes an account (and possibly its files)")


__all__ = ["RO"]
