"""git: reading commands read; history rewrites and discarding work destroy; configuration
that names a command (`-c core.pager=…`, `alias.x='!…'`, `core.sshCommand`, `diff.external`)
and options that run one (`rebase --exec`, `bisect run`, `submodule foreach`) are judged as
that command."""

from __future__ import annotations

import re
from collections.abc import Callable

from vpsagent.safety.analyze import Call, Outcome
from vpsagent.safety.model import CHANGE, DES, RO, UNKNOWN, Finding
from vpsagent.safety.parse import Word
from vpsagent.safety.table import Program, Scan, opts, scan

READ = frozenset({
    "status", "log", "diff", "show", "rev-parse", "describe", "ls-files", "ls-tree", "ls-remote", "blame", "shortlog",
    "grep", "cat-file", "show-ref", "whatchanged", "version", "help", "count-objects", "for-each-ref", "name-rev",
    "rev-list", "show-branch", "merge-base", "diff-tree", "diff-files", "diff-index", "var", "check-ignore", "annotate",
    "fsck", "check-attr", "check-ref-format", "cherry", "range-diff", "verify-commit", "verify-tag", "verify-pack",
    "show-index", "get-tar-commit-id", "fetch-pack", "check-mailmap", "column", "hash-object", "stripspace",
    "reflog-show", "difftool-helper",
})
# configuration keys whose value is a command line git runs
_COMMAND_KEYS = re.compile(
    r"^(core\.(pager|fsmonitor|sshcommand|editor|askpass|gitproxy)|diff\.external|diff\..+\.(textconv|command)|"
    r"filter\..+\.(clean|smudge|process)|merge\..+\.driver|sequence\.editor|gpg\.program|gpg\..+\.program|pager\..+|"
    r"interactive\.difffilter|uploadpack\.packobjectshook|credential\..*helper|remote\..+\.(uploadpack|receivepack)|"
    r"difftool\..+\.cmd|mergetool\..+\.cmd|sendemail\.sendmailcmd|core\.hookspath|include\.path|includeif\..+\.path|"
    r"protocol\..+\.allow|ssh\.variant)$", re.I)
_GLOBAL_WITH_ARG = opts("--git-dir", "--work-tree", "--namespace", "--exec-path", "--config-env", "--super-prefix",
                        "--list-cmds", "--attr-source")


def git(call: Call, spec: Program) -> Outcome:
    s, rest = scan(call.args, "Cc", _GLOBAL_WITH_ARG, stop_at_operand=True)
    out = _config_options(call, s)
    if s.value("--exec-path") is not None:
        out = out.worst(Finding(UNKNOWN, "git --exec-path runs git commands from another directory"))
    if not rest:
        return out.worst(Finding(RO, "git shows help or its version"))
    sub = rest[0].value
    more = rest[1:]
    if "--help" in (w.value for w in more) or sub == "help":
        return out.worst(Finding(RO, f"git {sub} --help only prints help"))
    return out.worst(_subcommand(call, sub, more))


def _config_options(call: Call, s: Scan) -> Finding:
    out = Finding(RO, "")
    for w in s.values.get("-c", []):
        key, _, value = w.value.partition("=")
        out = out.worst(_config_value(call, key, w.with_value(value), "git -c"))
    for w in s.values.get("--config-env", []):
        key, _, var = w.value.partition("=")
        if _COMMAND_KEYS.match(key) or key.lower().startswith("alias."):
            out = out.worst(Finding(DES, f"git --config-env {key} runs a command held in ${var}, which cannot be seen"))
    return out


def _config_value(call: Call, key: str, value: Word, origin: str) -> Finding:
    low = key.lower()
    if low.startswith("alias."):
        if value.value.startswith("!"):
            return call.shell(value.value[1:], f"{origin} {key}")
        return Finding(RO, "")
    if low in ("core.hookspath", "include.path") or low.startswith(("includeif.", "protocol.")) or low == "ssh.variant":
        return Finding(UNKNOWN, f"{origin} {key} makes git load hooks or configuration the gate cannot see")
    if low.startswith("credential.") and not value.value.startswith("!"):
        return Finding(UNKNOWN, f"{origin} {key} runs a credential helper")
    if _COMMAND_KEYS.match(key):
        return call.shell(value.value.lstrip("!"), f"{origin} {key}")
    return Finding(RO, "")


_DISCARD = {
    "clean": "deletes untracked files",
    "filter-branch": "rewrites history",
    "filter-repo": "rewrites history",
    "prune": "deletes unreachable objects (recovery points)",
}


def _subcommand(call: Call, sub: str, more: list[Word]) -> Finding:
    s, _ = scan(more, "mnCeSuoxXFt", opts("--message", "--format", "--author", "--since", "--until", "--pretty",
                                        "--exec", "--output", "--extcmd", "--file", "--template", "--strategy",
                                        "--open-files-in-pager", "--upload-pack", "--receive-pack"))
    pos = [w.value for w in s.operands]
    transport = _transport(call, sub, s, more)
    if transport is not None and transport.risk > RO:
        return transport
    runs = _runs(call, sub, s, more)
    if runs is not None:
        return runs
    if sub in ("fetch", "pull", "clean", "add", "rm", "mv", "commit") and s.has("-n", "--dry-run") and sub != "commit":
        return Finding(RO, f"git {sub} --dry-run changes nothing")
    handler = _SUBCOMMANDS.get(sub)
    if handler is not None:
        return handler(call, s, pos)
    if sub in _DISCARD:
        if sub == "clean" and not s.has("-f", "--force") or s.has("-n", "--dry-run"):
            return Finding(RO, "git clean -n only lists")
        return Finding(DES, f"git {sub} {_DISCARD[sub]}")
    if sub in READ:
        return _outputs(call, s, Finding(RO, f"git {sub} only reads"))
    if sub in _CHANGE:
        return Finding(CHANGE, f"git {sub} changes the repository")
    return Finding(UNKNOWN, f"git {sub} is not a git command the gate knows (an alias?)")


def _outputs(call: Call, s: Scan, base: Finding) -> Finding:
    for w in s.values.get("--output", []):
        base = base.worst(call.write(w, "git --output"))
    return base


def _transport(call: Call, sub: str, s: Scan, more: list[Word]) -> Finding | None:
    """`--upload-pack`/`--receive-pack` name a program git runs; `ext::` URLs are a command."""
    out: Finding | None = None
    for flag in ("--upload-pack", "--receive-pack", "--exec"):
        for w in s.values.get(flag, []):
            found = call.shell_word(w, f"git {sub} {flag}")
            out = found if out is None else out.worst(found)
    for w in more:
        if w.value.startswith("ext::"):
            # ext::CMD ARGS…: words split on spaces, `% ` is a space inside a word
            argv = [Word.plain(a.replace("% ", " ").replace("%%", "%")) for a in re.split(r"(?<!%) ", w.value[5:]) if a]
            found = Finding(UNKNOWN, f"git {sub} uses an ext:: transport, which runs a command").worst(
                call.run_argv(argv, f"git {sub} ext::"))
            out = found if out is None else out.worst(found)
    return out


def _runs(call: Call, sub: str, s: Scan, more: list[Word]) -> Finding | None:
    if sub == "rebase" and (s.value("-x", "--exec") is not None):
        return Finding(CHANGE, "git rebase rewrites commits").worst(call.shell_word(s.value("-x", "--exec"), "git rebase --exec"))  # type: ignore[arg-type]
    if sub == "bisect" and more[:1] and more[0].value == "run":
        return Finding(CHANGE, "git bisect moves HEAD").worst(call.run_argv(more[1:], "git bisect run"))
    if sub == "submodule" and any(w.value == "foreach" for w in more):
        idx = next(i for i, w in enumerate(more) if w.value == "foreach")
        code = " ".join(w.value for w in more[idx + 1:] if w.value not in ("--recursive", "--quiet", "-q"))
        return call.shell(code, "git submodule foreach")
    if sub == "difftool" and s.value("-x", "--extcmd") is not None:
        return call.shell_word(s.value("-x", "--extcmd"), "git difftool --extcmd")  # type: ignore[arg-type]
    if sub == "grep" and (s.value("-O", "--open-files-in-pager") is not None or s.has("-O")):
        pager = s.value("-O", "--open-files-in-pager")
        return call.shell_word(pager, "git grep -O") if pager is not None else Finding(UNKNOWN, "git grep -O runs a pager")
    return None


def _config(call: Call, s: Scan, pos: list[str]) -> Finding:
    reads = {"--get", "--get-all", "--list", "-l", "--get-regexp", "--show-origin", "--get-urlmatch", "--show-scope",
             "--get-color", "--get-colorbool"}
    if s.flags & reads or (len(pos) == 1 and not s.flags - {"--global", "--system", "--local", "--file", "-f", "--worktree"}):
        return Finding(RO, "git config only reads")
    if pos[:1] in (["get"], ["list"]):
        return Finding(RO, "git config only reads")
    if pos and pos[0] == "set":
        pos = pos[1:]
    if len(pos) >= 2:
        found = _config_value(call, pos[0], Word.plain(pos[1]), "git config")
        return Finding(CHANGE, f"git config sets {pos[0]}").worst(
            Finding(max(found.risk, UNKNOWN) if found.risk > RO else RO, found.reason))
    return Finding(CHANGE, "git config changes the configuration")


def _branch(call: Call, s: Scan, pos: list[str]) -> Finding:
    changing = {"-d", "-D", "-m", "-M", "-c", "-C", "--delete", "--move", "--copy", "-u", "--set-upstream-to",
                "--unset-upstream", "-f", "--force", "--edit-description"}
    if s.has("-D") or (s.has("-d", "--delete") and s.has("-f", "--force")):
        return Finding(DES, "git branch -D deletes an unmerged branch")
    if not (s.flags & changing) and not pos:
        return Finding(RO, "git branch only lists")
    return Finding(CHANGE, "git branch changes branches")


def _tag(call: Call, s: Scan, pos: list[str]) -> Finding:
    if (not pos or s.has("-l", "--list", "-n", "--contains", "--points-at")) and not s.has("-d", "-a", "-s", "-f"):
        return Finding(RO, "git tag only lists")
    return Finding(CHANGE, "git tag changes tags")


def _remote(call: Call, s: Scan, pos: list[str]) -> Finding:
    if not pos or pos[0] in ("show", "get-url"):
        return Finding(RO, "git remote only lists")
    return Finding(CHANGE, f"git remote {pos[0]} changes remotes")


def _stash(call: Call, s: Scan, pos: list[str]) -> Finding:
    if pos[:1] in (["list"], ["show"]):
        return Finding(RO, "git stash list only reads")
    if pos[:1] in (["drop"], ["clear"]):
        return Finding(DES, f"git stash {pos[0]} deletes stashed work")
    return Finding(CHANGE, "git stash changes the working tree")


def _reset(call: Call, s: Scan, pos: list[str]) -> Finding:
    if s.has("--hard"):
        return Finding(DES, "git reset --hard discards uncommitted work")
    return Finding(CHANGE, "git reset moves HEAD")


def _push(call: Call, s: Scan, pos: list[str]) -> Finding:
    forced = {"-f", "--force", "--mirror", "--delete", "-d", "--prune", "--force-with-lease", "--force-if-includes"}
    if s.has("-n", "--dry-run"):
        return Finding(RO, "git push --dry-run changes nothing")
    if s.flags & forced or any(v.startswith(("+", ":")) for v in pos):
        return Finding(DES, "git push --force/--delete rewrites or deletes remote history")
    return Finding(CHANGE, "git push publishes commits")


def _checkout(call: Call, s: Scan, pos: list[str]) -> Finding:
    if s.has("-f", "--force", "--discard-changes") or s.after_dashdash or "." in pos:
        return Finding(DES, "git checkout -f / -- discards uncommitted work")
    return Finding(CHANGE, "git checkout switches branches")


def _restore(call: Call, s: Scan, pos: list[str]) -> Finding:
    if s.has("--staged", "-S") and not s.has("--worktree", "-W"):
        return Finding(CHANGE, "git restore --staged unstages changes")
    return Finding(DES, "git restore discards uncommitted work")


def _reflog(call: Call, s: Scan, pos: list[str]) -> Finding:
    if pos[:1] in (["expire"], ["delete"]):
        return Finding(DES, "git reflog expire/delete drops recovery points")
    return Finding(RO, "git reflog only reads")


def _gc(call: Call, s: Scan, pos: list[str]) -> Finding:
    if any(f.startswith("--prune") for f in s.flags) and any(v.value == "now" for v in s.values.get("--prune", [])):
        return Finding(DES, "git gc --prune=now deletes unreachable objects (recovery points)")
    return Finding(CHANGE, "git gc repacks the repository")


_Sub = Callable[[Call, Scan, list[str]], Finding]


def _small(read_words: frozenset[str], what: str) -> _Sub:
    def judge(call: Call, s: Scan, pos: list[str]) -> Finding:
        if pos[:1] and pos[0] in read_words or not pos and "" in read_words:
            return Finding(RO, f"git {what} only reads")
        return Finding(CHANGE, f"git {what} changes the repository")

    return judge


def _update_ref(call: Call, s: Scan, pos: list[str]) -> Finding:
    return Finding(DES if s.has("-d") else CHANGE, "git update-ref -d deletes a ref" if s.has("-d") else "git update-ref moves a ref")


def _switch(call: Call, s: Scan, pos: list[str]) -> Finding:
    if s.has("-f", "--force", "--discard-changes"):
        return Finding(DES, "git switch --discard-changes discards uncommitted work")
    return Finding(CHANGE, "git switch changes branches")


def _apply(call: Call, s: Scan, pos: list[str]) -> Finding:
    if s.has("--check", "--stat", "--numstat", "--summary") and not s.has("--apply"):
        return Finding(RO, "git apply --check only checks")
    return Finding(CHANGE, "git apply changes files")


def _worktree(call: Call, s: Scan, pos: list[str]) -> Finding:
    if pos[:1] == ["list"]:
        return Finding(RO, "git worktree list only reads")
    if pos[:1] == ["remove"] and s.has("-f", "--force"):
        return Finding(DES, "git worktree remove --force deletes a worktree with its changes")
    return Finding(CHANGE, "git worktree changes worktrees")


_SUBCOMMANDS: dict[str, _Sub] = {
    "config": _config, "branch": _branch, "tag": _tag, "remote": _remote, "stash": _stash, "reset": _reset,
    "push": _push, "checkout": _checkout, "restore": _restore, "reflog": _reflog, "gc": _gc, "update-ref": _update_ref,
    "switch": _switch, "apply": _apply, "worktree": _worktree,
    "submodule": _small(frozenset({"status", "summary", ""}), "submodule"),
    "notes": _small(frozenset({"list", "show", ""}), "notes"),
    "sparse-checkout": _small(frozenset({"list"}), "sparse-checkout"),
    "lfs": _small(frozenset({"ls-files", "status", "env", "version", "track", "logs"}), "lfs"),
    "bundle": _small(frozenset({"verify", "list-heads"}), "bundle"),
}
_CHANGE = frozenset({
    "pull", "fetch", "clone", "init", "add", "commit", "mv", "rm", "merge", "rebase", "cherry-pick", "revert", "am",
    "format-patch", "archive", "bisect", "mergetool", "difftool", "repack", "pack-refs", "maintenance", "fast-import",
    "replace", "symbolic-ref", "read-tree", "write-tree", "commit-tree", "update-index", "checkout-index", "mktag",
    "mktree", "unpack-objects", "index-pack", "send-email", "request-pull", "daemon", "instaweb", "credential",
    "rerere", "citool", "gui", "cherry", "sparse-checkout", "svn", "p4", "scalar",
})
