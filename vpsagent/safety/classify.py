"""Classify a shell command as read-only, mutating or destructive — by parsing it.

The command is parsed (see `_shell`), every simple command is unwrapped through `sudo`,
`env`, `timeout`, `xargs`, `sh -c`, `find -exec`, `eval`... and the innermost program is
judged with its arguments. Command substitutions are classified too. The worst part wins.

Fail closed: what we cannot parse or cannot know (a program name computed at run time,
`eval` of a variable) is destructive; a program we do not know is mutating. Read-only
is a curated list, generous on purpose: everyday inspection must never need approval.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from vpsagent.safety._shell import ShellSyntaxError, Word, parse


class Risk(StrEnum):
    READ_ONLY = "read-only"
    MUTATING = "mutating"
    DESTRUCTIVE = "destructive"

    @property
    def rank(self) -> int:
        return _RISK_ORDER.index(self)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Risk):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Risk):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Risk):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Risk):
            return NotImplemented
        return self.rank >= other.rank

    def __str__(self) -> str:
        return self.value


_RISK_ORDER = [Risk.READ_ONLY, Risk.MUTATING, Risk.DESTRUCTIVE]
RO, MUT, DES = Risk.READ_ONLY, Risk.MUTATING, Risk.DESTRUCTIVE


@dataclass(frozen=True)
class Part:
    """One thing the command does: a simple command (unwrapped) or a redirection.

    `argv` is the innermost command that runs (program name as a basename); `text` is how
    the simple command was written (wrappers included) — policy deny/ask rules match both,
    allow rules only `argv` so `allow: ["sudo *"]` cannot smuggle in `sudo rm -rf /`.
    """

    argv: tuple[str, ...]
    risk: Risk
    reason: str
    text: str
    programs: tuple[str, ...] = ()  # wrappers first, then the program that runs


@dataclass(frozen=True)
class Classification:
    risk: Risk
    reasons: tuple[str, ...]
    programs: tuple[str, ...]
    commands: tuple[tuple[str, ...], ...]
    parts: tuple[Part, ...] = ()
    command: str = ""  # the command as given (policy rules also match the whole string)

    @property
    def summary(self) -> str:
        """The reasons for the final risk, one line."""
        worst = [p.reason for p in self.parts if p.risk == self.risk and p.reason]
        return "; ".join(dict.fromkeys(worst or list(self.reasons)))


_MAX_DEPTH = 8

# ---------------------------------------------------------------- paths

_SAFE_SINKS = {"/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty", "/dev/fd/1", "/dev/fd/2", "-"}
_SYSTEM_DIRS = {
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/media",
    "/mnt", "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/usr", "/var", "/usr/bin",
    "/usr/sbin", "/usr/lib", "/usr/lib64", "/usr/local", "/usr/share", "/usr/include",
    "/usr/local/bin", "/usr/local/sbin", "/usr/local/lib", "/var/lib", "/var/log", "/var/www",
    "/var/backups", "/var/spool", "/var/mail", "/var/cache", "/etc/ssh", "/etc/systemd",
    "/etc/default", "/etc/init.d", "/var/lib/mysql", "/var/lib/postgresql", "/var/lib/docker",
    "~", "$HOME", "${HOME}",
}
_CRITICAL_FILES = {
    "/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow", "/etc/sudoers", "/etc/fstab",
    "/etc/crypttab", "/etc/ld.so.preload", "/etc/pam.conf", "/etc/inittab", "/etc/securetty",
    "/etc/login.defs", "/etc/nsswitch.conf", "/proc/sysrq-trigger", "/dev/mem", "/dev/kmem",
    "/dev/port", "/vmlinuz", "/initrd.img",
}
_CRITICAL_PREFIXES = (
    "/boot/", "/etc/sudoers.d/", "/etc/pam.d/", "/bin/", "/sbin/", "/lib/", "/lib64/", "/lib32/",
    "/usr/bin/", "/usr/sbin/", "/usr/lib/", "/usr/lib64/", "/dev/disk/", "/dev/mapper/",
)
_BLOCK_DEVICE_RE = re.compile(
    r"^/dev/(sd[a-z]+|hd[a-z]+|vd[a-z]+|xvd[a-z]+|nvme\d|mmcblk\d|md\d|dm-\d|loop\d|nbd\d|sr\d|"
    r"disk/|mapper/|root$|(?!(tcp|udp|fd|pts|shm|mqueue|hugepages|net|input|snd|dri|bus|char|block|cpu|usb)/)[a-z][\w-]*/)"
)


_PROC_ROOT_RE = re.compile(r"^/proc/(self|thread-self|\d+)/(root|cwd)(/|$)")


def _norm_path(p: str) -> str:
    if p.startswith(("~/", "$HOME/", "${HOME}/")):
        p = "/root/" + p.split("/", 1)[1]
    if p in ("~", "$HOME", "${HOME}"):
        return p
    if not p.startswith("/"):
        return p
    # `//etc`, `/./etc` and `/proc/self/root/etc` all name /etc: normalise them so a path
    # cannot dodge the system-path and credential checks by spelling
    out = posixpath.normpath("/" + p.lstrip("/"))
    out = _PROC_ROOT_RE.sub("/", out, count=1)
    return posixpath.normpath(out) if out != "/" else out


def is_block_device(path: str) -> bool:
    return bool(_BLOCK_DEVICE_RE.match(_norm_path(path)))


def _expand_braces(p: str, limit: int = 64) -> list[str]:
    """`/{etc,bin}` -> [`/etc`, `/bin`] (what bash passes), capped so it cannot blow up."""
    out = [p]
    for _ in range(8):
        nxt: list[str] = []
        changed = False
        for item in out:
            m = re.search(r"\{([^{}]*,[^{}]*)\}", item)
            if not m:
                nxt.append(item)
                continue
            changed = True
            nxt.extend(item[: m.start()] + alt + item[m.end() :] for alt in m.group(1).split(","))
        out = nxt[:limit]
        if not changed:
            break
    return out


def is_critical_file(path: str) -> bool:
    """Writing or deleting this can make the machine unbootable or lock everyone out."""
    return any(_is_critical_file(p) for p in _expand_braces(path))


def _is_critical_file(path: str) -> bool:
    p = _norm_path(path)
    if p in _CRITICAL_FILES or p.startswith(_CRITICAL_PREFIXES) or p == "/boot":
        return True
    if re.search(r"(^|/)\.ssh/authorized_keys2?$", p):
        return True
    return is_block_device(p)


def _glob_base(p: str) -> str:
    """For `/etc/*.conf` the directory the glob walks: `/etc`."""
    m = re.search(r"[*?\[]", p)
    if not m:
        return p
    head = p[: m.start()]
    return head.rsplit("/", 1)[0] or "/" if "/" in head else "."


# Trees whose ownership or modes the OS depends on (`chown -R www-data /var/www` is routine).
_APP_DIRS = {"/srv", "/opt", "/var/www", "/mnt", "/media"}


def _is_permission_root(path: str) -> bool:
    return any(_norm_path(p) not in _APP_DIRS and _is_system_path(p) for p in _expand_braces(path))


def is_system_path(path: str) -> bool:
    """A top-level system directory, a critical file, or a glob over one of them."""
    return any(_is_system_path(p) for p in _expand_braces(path))


def _is_system_path(path: str) -> bool:
    p = _norm_path(path)
    if p in _SYSTEM_DIRS or is_critical_file(p):
        return True
    if re.fullmatch(r"/home/[^/]+/?", p) or re.fullmatch(r"/root/?", p):
        return True
    if re.search(r"[*?\[]", p):
        base = _norm_path(_glob_base(p))
        if base in _SYSTEM_DIRS or re.fullmatch(r"/home/[^/]+", base):
            return True
    return False


def _unknown_path(w: Word) -> bool:
    """A path whose start is decided at run time (`$DIR/x`, xargs input, `{}`) — could be `/`."""
    return w.dynamic and not w.prefix.strip("/")


def _sink(w: Word) -> bool:
    return not w.dynamic and _norm_path(w.value) in _SAFE_SINKS


def _write_target_risk(w: Word, what: str) -> tuple[Risk, str]:
    if _sink(w):
        return RO, ""
    if not w.dynamic and is_critical_file(w.value):
        return DES, f"{what} {w.value} overwrites a critical system file or device"
    return MUT, f"{what} {w.value} writes a file"


def classify_write(path: str) -> Classification:
    """The write_file tool: mutating, destructive for critical paths."""
    if not path.strip():
        risk, reason = DES, "write_file without a path"
    elif is_critical_file(path) or _norm_path(path) in _SYSTEM_DIRS:
        risk, reason = DES, f"writing {path} replaces a critical system file"
    else:
        risk, reason = MUT, f"writing {path} changes a file"
    argv = ("write_file", path)
    part = Part(argv, risk, reason, " ".join(argv), ("write_file",))
    return Classification(risk, (reason,), ("write_file",), (argv,), (part,), f"write_file {path}")


# ---------------------------------------------------------------- option helpers


def _split_opts(args: Sequence[Word], with_arg: str = "", long_with_arg: Sequence[str] = ()) -> tuple[set[str], dict[str, str], list[Word]]:
    """Parse getopt-style options: returns (flags, options with values, positionals).

    Short flags are recorded as "-x", long ones as "--name". Options stop at `--`.
    Options may also appear after positionals (GNU style).
    """
    flags: set[str] = set()
    values: dict[str, str] = {}
    pos: list[Word] = []
    i = 0
    while i < len(args):
        a = args[i].value
        if a == "--":
            pos.extend(args[i + 1 :])
            break
        if a.startswith("--") and len(a) > 2:
            name, eq, val = a.partition("=")
            if eq:
                values[name] = val
                flags.add(name)
            elif name in long_with_arg and i + 1 < len(args):
                values[name] = args[i + 1].value
                flags.add(name)
                i += 1
            else:
                flags.add(name)
        elif a.startswith("-") and len(a) > 1 and not args[i].quoted:
            j = 1
            while j < len(a):
                ch = a[j]
                flags.add("-" + ch)
                if ch in with_arg:
                    rest = a[j + 1 :]
                    if rest:
                        values["-" + ch] = rest
                    elif i + 1 < len(args):
                        values["-" + ch] = args[i + 1].value
                        i += 1
                    break
                j += 1
        else:
            pos.append(args[i])
        i += 1
    return flags, values, pos


def _vals(ws: Sequence[Word]) -> list[str]:
    return [w.value for w in ws]


# ---------------------------------------------------------------- the analyser


@dataclass
class _Ctx:
    parts: list[Part] = field(default_factory=list)
    functions: set[str] = field(default_factory=set)
    depth: int = 0


_Result = tuple[Risk, str]


class _Analyzer:
    def __init__(self, ctx: _Ctx):
        self.ctx = ctx
        # what the current simple command reads on stdin, when the command itself says so:
        # a heredoc, a here-string, or the output of `echo`/`printf`/`base64 -d` piped in
        self.stdin: str | None = None

    # -- entry points

    def script(self, text: str, depth: int, origin: str = "", chain: tuple[str, ...] = ()) -> None:
        """Classify shell text; `chain` names the wrappers that run it (`sudo sh -c ...`)."""
        if depth > _MAX_DEPTH:
            self.add((), DES, "command nests too deeply to check", text, chain)
            return
        try:
            script = parse(text)
        except ShellSyntaxError as e:
            self.add((), DES, f"cannot parse {origin or 'the command'} ({e}); refusing to guess", text, chain)
            return
        except RecursionError:
            self.add((), DES, f"{origin or 'the command'} nests too deeply to check", text, chain)
            return
        saved_stdin = self.stdin
        try:
            self._script(script, depth, chain)
        finally:
            self.stdin = saved_stdin

    def _script(self, script, depth: int, chain: tuple[str, ...]) -> None:
        self.ctx.functions |= script.functions
        outputs: dict[int, str | None] = {}
        for sub in script.extra_subs:
            self.script(sub, depth + 1, "a command substitution")
        for idx, cmd in enumerate(script.commands):
            for w in cmd.words:
                for sub in w.subs:
                    self.script(sub, depth + 1, "a command substitution")
            for r in cmd.redirects:
                for sub in r.target.subs:
                    self.script(sub, depth + 1, "a command substitution")
            if cmd.header:
                continue
            text_ = " ".join([w.value for w in cmd.words] + [f"{r.fd}{r.op} {r.target.value}" for r in cmd.redirects])
            for r in cmd.redirects:
                risk, reason = self.redirect(r.op, r.target)
                if risk > RO:
                    argv = tuple(w.value for w in cmd.words) or (r.op, r.target.value)
                    self.add(argv, risk, reason, text_, chain)
                elif r.op == "<" and not r.target.dynamic and _names_credential(r.target.value):
                    # `cat < /etc/shadow` reads the file as surely as `cat /etc/shadow`; record it
                    # so reads_credentials() sees it (also for `done < FILE`, which has no words)
                    self.add((r.op, r.target.value), RO, f"input redirection reads {r.target.value}", text_, chain)
            words = list(cmd.words)
            while words and not words[0].quoted and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*\+?=.*", words[0].value, re.S):
                words.pop(0)
            if not words:
                continue
            stdin = outputs.get(cmd.pipe_from) if cmd.pipe_from is not None else None
            for r in cmd.redirects:
                if r.op in ("<<", "<<-"):
                    stdin = r.body
                elif r.op == "<<<":
                    stdin = None if r.target.dynamic else r.target.value + "\n"
                elif r.op == "<" and r.fd in ("", "0"):
                    stdin = None
            self.stdin = stdin
            outputs[idx] = _stdout_of(words, stdin)
            prog = words[0].value
            if cmd.functions and not words[0].dynamic and posixpath.basename(prog) in cmd.functions:
                self.add(tuple(_vals(words)), DES,
                         f"function {prog} calls itself (a fork bomb pattern)", text_, (*chain, prog))
                continue
            self.argv(words, depth, text_, chain)

    def add(self, argv: tuple[str, ...], risk: Risk, reason: str, text: str, programs: tuple[str, ...] = ()) -> None:
        self.ctx.parts.append(Part(tuple(argv), risk, reason, text, programs))

    def redirect(self, op: str, target: Word) -> _Result:
        if op in ("<", "<<", "<<-", "<<<", "<&"):
            return RO, ""
        if op == ">&" and (target.value.isdigit() or target.value == "-"):
            return RO, ""
        if op == "<>":
            return _write_target_risk(target, "opening")
        return _write_target_risk(target, f"redirection {op}")

    # -- one simple command

    def argv(self, words: list[Word], depth: int, text: str, chain: tuple[str, ...]) -> None:
        if not words:
            # a wrapper with nothing to run (`sudo -v`, `env`, `nice`): harmless
            self.add(chain[-1:] or (), RO, f"{chain[-1] if chain else 'empty command'} without a command", text, chain)
            return
        w0 = words[0]
        var_dir = re.fullmatch(r"\$\{?[A-Za-z_]\w*\}?(/[^$`{}*?\[]*)?/([^/$`{}*?\[]+)", w0.value)
        if w0.dynamic and var_dir and not w0.computed:
            # "$HOME/bin/tool": the directory is a variable, the program name is not
            w0 = Word(w0.value, dynamic=False, prefix=w0.value)
        if w0.dynamic:
            what = "command substitution" if w0.computed else "variable"
            self.add(tuple(_vals(words)), DES,
                     f"the program name {w0.value} comes from a {what}, so what runs is unknown", text, chain)
            return
        if not w0.quoted and (re.search(r"[*?]|\[.*\]", w0.value) or re.search(r"\{[^{}]*(,|\.\.)[^{}]*\}", w0.value)):
            self.add(tuple(_vals(words)), DES,
                     f"the program name {w0.value} is a glob or brace pattern, so what runs is unknown", text, chain)
            return
        prog = posixpath.basename(w0.value) if "/" in w0.value else w0.value
        args = words[1:]
        if w0.value.startswith(("/etc/init.d/", "/etc/rc.d/")):
            # /etc/init.d/ssh stop is `service ssh stop`, not the ssh client
            risk, reason = _service("service", [Word(prog), *args])
            self.add(("service", prog, *_vals(args)), risk, reason, text, (*chain, prog))
            return
        chain2 = chain + (prog,)
        argv = (prog, *_vals(args))
        if prog in self.ctx.functions and not chain:
            # a call of a function defined in the same command: its body is classified already
            self.add(argv, RO, f"call of shell function {prog}", text, chain2)
            return
        wrapper = _WRAPPERS.get(prog)
        if wrapper is not None:
            inner = wrapper(self, args, depth, text, chain2)
            if inner is None:
                return
            self.argv(inner, depth, text, chain2)
            return
        handler = _HANDLERS.get(prog)
        if handler is not None:
            risk, reason = handler(prog, args)
            if self.stdin is not None and prog in _SQL_CLIENTS and reason.endswith("from its input, whose effect is unknown"):
                risk, reason = _sql(self.stdin)
                reason = reason or f"{prog} runs a read-only query"
            elif self.stdin is not None and prog in ("at", "batch"):
                self.script(self.stdin, depth + 1, f"the commands given to {prog}", chain2)
        elif prog in _READ_ONLY:
            risk, reason = RO, ""
        elif re.fullmatch(r"mkfs(\..+)?|mke2fs|mkswap|mkdosfs|mkntfs|mkfs\w+", prog):
            risk, reason = DES, f"{prog} formats a filesystem"
        elif re.fullmatch(r"python[\d.]*|pypy3?", prog):
            risk, reason = self.python(prog, args, depth)
        elif prog.startswith("php") and args and all(a.value in ("-m", "-i", "-v", "--version", "--ini", "-l", "--modules", "--info") or (a.value.startswith("/") and "-l" in _vals(args)) for a in args):
            risk, reason = RO, f"{prog} {args[0].value} only reads"
        elif prog in ("perl", "ruby", "node", "nodejs", "php", "deno", "bun", "lua", "Rscript", "osascript"):
            risk, reason = self.inline(prog, args, depth)
        elif prog.endswith(".sh") or w0.value.startswith(("./", "../")):
            risk, reason = MUT, f"{w0.value} runs a local script whose effect is unknown"
        else:
            risk, reason = MUT, f"{prog} is not on the read-only list, so it may change the server"
        if risk == RO and not reason:
            reason = f"{prog} only reads"
        self.add(argv, risk, reason, text, chain2)

    # -- interpreters

    def code(self, prog: str, code: str, depth: int, lang: str = "") -> _Result:
        """Inline program text: look for deletions and shell-outs. Unknown code is mutating."""
        if _DESTRUCTIVE_CODE.search(code):
            m = _DESTRUCTIVE_CODE.search(code)
            return DES, f"{prog} inline code calls {m.group(0).strip()}, which deletes data"
        risk, reason = MUT, f"{prog} runs inline code whose effect is unknown"
        for m in _SHELL_OUT.finditer(code):
            shell = m.group("s") or " ".join(re.findall(r"""['"]([^'"]*)['"]""", m.group("l") or ""))
            if shell:
                sub = classify_at(shell, depth + 1)
                if sub.risk > risk:
                    risk, reason = sub.risk, f"{prog} inline code runs `{shell}`: {sub.summary}"
        return risk, reason

    def python(self, prog: str, args: list[Word], depth: int) -> _Result:
        vals = _vals(args)
        if (not vals or vals[0] == "-") and self.stdin is not None:
            return self.code(prog, self.stdin, depth)
        if not vals or vals[0] in ("-V", "--version", "-VV"):
            return (RO, f"{prog} --version") if vals else (MUT, f"{prog} reads a program from stdin")
        for i, v in enumerate(vals):
            if v == "-c" and i + 1 < len(vals):
                return self.code(prog, vals[i + 1], depth)
            if v.startswith("-c") and len(v) > 2:
                return self.code(prog, v[2:], depth)
            if v == "-m" and i + 1 < len(vals):
                mod = vals[i + 1]
                if mod in ("json.tool", "platform", "site", "sysconfig", "this", "tabnanny", "pydoc", "pip") and (mod != "pip" or i + 2 >= len(vals)):
                    return RO, f"{prog} -m {mod} only reads"
                if mod == "pip" and i + 2 < len(vals):
                    return _pip("pip", args[i + 2 :])
                return MUT, f"{prog} -m {mod} runs a module whose effect is unknown"
            if not v.startswith("-"):
                return MUT, f"{prog} {v} runs a script whose effect is unknown"
        return MUT, f"{prog} runs code whose effect is unknown"

    def inline(self, prog: str, args: list[Word], depth: int) -> _Result:
        vals = _vals(args)
        if (not vals or vals == ["-"]) and self.stdin is not None:
            return self.code(prog, self.stdin, depth)
        if vals and vals[0] in ("-v", "--version", "-V", "-version"):
            return RO, f"{prog} --version"
        in_place = any(re.fullmatch(r"-\w*i\S*", v) for v in vals) and prog in ("perl", "ruby")
        for i, v in enumerate(vals):
            if v in ("-e", "-E", "--eval", "-p", "--print", "-r") and i + 1 < len(vals):
                risk, reason = self.code(prog, vals[i + 1], depth)
                if in_place and risk < MUT:
                    risk, reason = MUT, f"{prog} -i edits files in place"
                return risk, reason
            m = re.fullmatch(r"-[a-zA-Z]*[eE]", v)
            if m and i + 1 < len(vals) and prog in ("perl", "ruby"):
                return self.code(prog, vals[i + 1], depth)
        return MUT, f"{prog} runs code whose effect is unknown"


_SQL_CLIENTS = {"psql", "mysql", "mariadb", "sqlite3", "sqlite"}


def _unescape_echo(text: str) -> str:
    return re.sub(r"\\([ntr\\])", lambda m: {"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}[m.group(1)], text)


def _stdout_of(words: list[Word], stdin: str | None) -> str | None:
    """What a simple producer writes to stdout, when the command line alone decides it."""
    if not words or any(w.dynamic for w in words):
        return None
    prog = posixpath.basename(words[0].value)
    args = _vals(words[1:])
    if prog == "echo":
        flags = set()
        while args and re.fullmatch(r"-[neE]+", args[0]):
            flags |= set(args.pop(0)[1:])
        text = " ".join(args)
        if "e" in flags:
            text = _unescape_echo(text)
        return text if "n" in flags else text + "\n"
    if prog == "printf" and args:
        fmt = args[0]
        if "%" not in fmt:
            return _unescape_echo(fmt)
        if re.fullmatch(r"%s(\\n)?", fmt):
            end = "\n" if fmt.endswith("\\n") else ""
            return "".join(a + end for a in args[1:])
        return None
    if prog == "cat" and not args:
        return stdin
    if prog == "base64" and stdin is not None and any(a in ("-d", "--decode", "-D") for a in args):
        import base64
        import binascii

        try:
            return base64.b64decode("".join(stdin.split()), validate=False).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            return None
    return None


def classify_at(command: str, depth: int) -> Classification:
    ctx = _Ctx(depth=depth)
    _Analyzer(ctx).script(command, depth)
    return _build(command, ctx)


# Files whose contents are credentials: reading them is not a change, but what is read
# goes to the model, so it needs the same approval as a change (redaction cannot know
# every format, e.g. /etc/shadow hashes).
_CREDENTIAL_FILE_RE = re.compile(
    r"(^|/)(shadow|gshadow|shadow-|gshadow-|\.pgpass|\.netrc|\.my\.cnf|\.git-credentials|"
    r"master\.key|secret\.key|vpsagent\.db(-wal|-shm)?|environ)$"
    r"|/\.ssh/id_[^/]*(?<!\.pub)$|ssh_host_[a-z0-9]+_key$|^/etc/ssl/private/|"
    r"/\.(aws|docker|kube)/(credentials|config\.json|config)$|\.(key|p12|pfx|keystore)$"
)


# Where credentials live on a typical server: a glob argument (`/etc/ssh/ssh_host_*_key`,
# `/etc/sha*ow`) that the shell would expand to one of these reads it just the same.
_CREDENTIAL_PATHS = (
    "/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-",
    *(f"/etc/ssh/ssh_host_{t}_key" for t in ("rsa", "ecdsa", "ed25519", "dsa")),
    *(f"{h}/.ssh/id_{t}" for h in ("/root", "~", "$HOME") for t in ("rsa", "ecdsa", "ed25519", "dsa")),
    *(f"{h}/{f}" for h in ("/root", "~", "$HOME")
      for f in (".pgpass", ".netrc", ".my.cnf", ".git-credentials", ".aws/credentials",
                ".docker/config.json", ".kube/config")),
    # vpsagent's own key file and database, wherever VPSAGENT_HOME puts them
    *(f"{h}/{f}" for h in ("/root", "~", "$HOME")
      for f in (".config/vpsagent/secret.key", ".local/share/vpsagent/vpsagent.db")),
    "/proc/self/environ",
)


def _glob_segment_match(name: str, pattern: str) -> bool:
    # the shell's rules, not fnmatch's: `*` never matches a leading dot
    if name.startswith(".") and not pattern.startswith("."):
        return False
    return fnmatch.fnmatchcase(name, pattern)


def _names_credential(word: str) -> bool:
    word = _norm_path(word.strip("'\""))
    if _CREDENTIAL_FILE_RE.search(word):
        return True
    if not re.search(r"[*?\[]", word):
        return False
    pattern = word.split("/")
    for path in _CREDENTIAL_PATHS:
        parts = path.split("/")
        if len(parts) == len(pattern) and all(_glob_segment_match(n, p) for n, p in zip(parts, pattern, strict=True)):
            return True
    return False


def reads_credentials(cls: Classification) -> str | None:
    """The first argument of a read-only command that names a credential file, if any."""
    for argv in cls.commands:
        for word in argv[1:]:
            if _names_credential(word):
                return word
    return None


def classify(command: str) -> Classification:
    """Classify a shell command string. Never raises for bad shell: that is destructive."""
    if not command.strip():
        part = Part((), RO, "empty command", "")
        return Classification(RO, ("empty command",), (), (), (part,), command)
    cls = classify_at(command, 0)
    if cls.risk is RO:
        secret_file = reads_credentials(cls)
        if secret_file is not None:
            why = f"reads the credential file {secret_file} (its contents would reach the model)"
            parts = tuple(Part(p.argv, MUT, why, p.text, p.programs) if p.argv else p for p in cls.parts)
            return Classification(MUT, (why,), cls.programs, cls.commands, parts, command)
    return cls


def _build(command: str, ctx: _Ctx) -> Classification:
    parts = tuple(ctx.parts)
    risk = max((p.risk for p in parts), default=RO)
    reasons = tuple(dict.fromkeys(p.reason for p in parts if p.reason))
    programs = tuple(dict.fromkeys(prog for p in parts for prog in p.programs))
    commands = tuple(dict.fromkeys(p.argv for p in parts if p.argv))
    return Classification(risk, reasons, programs, commands, parts, command)


_DESTRUCTIVE_CODE = re.compile(
    r"shutil\s*\.\s*rmtree|\brmtree\b|os\s*\.\s*(remove|unlink|rmdir|removedirs)\b|\.unlink\s*\(|"
    r"\bunlink\s*\(|FileUtils\s*\.\s*(rm|rm_r|rm_rf|remove_dir|remove_entry)\w*|\brm_rf\b|"
    r"fs\s*\.\s*(rm|rmdir|unlink)(Sync)?\b|\.(rm|rmdir|unlink)Sync\s*\(|\bunlink\b|\brimraf\b|File\s*\.\s*delete|Dir\s*\.\s*(delete|rmdir)|"
    r"\bDROP\s+(DATABASE|TABLE|SCHEMA)\b|\bTRUNCATE\s+",
    re.I,
)
_SHELL_OUT = re.compile(
    r"""(?:os\s*\.\s*(?:system|popen)|subprocess\s*\.\s*\w+|\bsystem|\bexec(?:Sync)?|\bspawn(?:Sync)?|
        \bpopen|\bcheck_output|\bcheck_call|`)\s*\(?\s*
        (?:(?P<q>['"])(?P<s>.+?)(?P=q)|\[(?P<l>[^\]]*)\])""",
    re.X | re.S,
)


# ---------------------------------------------------------------- wrappers
# A wrapper returns the argv it runs (to classify next) or None when it recorded parts itself.

_Wrapper = Callable[[_Analyzer, list[Word], int, str, tuple[str, ...]], "list[Word] | None"]


def _skip_options(args: list[Word], with_arg: str = "", long_with_arg: Sequence[str] = (), stop_at_positional: bool = True) -> tuple[list[Word], set[str], dict[str, str]]:
    """Skip leading options; returns (the rest starting at the command, flags, values)."""
    flags: set[str] = set()
    values: dict[str, str] = {}
    i = 0
    while i < len(args):
        a = args[i].value
        if a == "--":
            return args[i + 1 :], flags, values
        if a.startswith("--") and len(a) > 2:
            name, eq, val = a.partition("=")
            flags.add(name)
            if eq:
                values[name] = val
            elif name in long_with_arg and i + 1 < len(args):
                values[name] = args[i + 1].value
                i += 1
        elif a.startswith("-") and len(a) > 1 and not args[i].quoted:
            j = 1
            while j < len(a):
                ch = a[j]
                flags.add("-" + ch)
                if ch in with_arg:
                    if a[j + 1 :]:
                        values["-" + ch] = a[j + 1 :]
                    elif i + 1 < len(args):
                        values["-" + ch] = args[i + 1].value
                        i += 1
                    break
                j += 1
        else:
            return args[i:], flags, values
        i += 1
    return [], flags, values


def _w_sudo(an: _Analyzer, args: list[Word], depth: int, text: str, chain: tuple[str, ...]) -> list[Word] | None:
    rest, flags, values = _skip_options(args, "ugpCDrtTUhR", ("--user", "--group", "--prompt", "--close-from", "--chdir", "--role", "--type", "--other-user", "--host", "--chroot"))
    if "-e" in flags or "--edit" in flags:
        for w in rest:
            r, why = _write_target_risk(w, "sudoedit of")
            an.add(("sudoedit", w.value), max(r, MUT), why or "sudoedit edits a file", text, chain)
        return None
    if not rest and ({"-s", "-i", "--shell", "--login"} & flags):
        an.add(chain[-1:], MUT, "sudo opens a root shell", text, chain)
        return None
    if ("-s" in flags or "-i" in flags) and rest:
        an.script(" ".join(_vals(rest)), depth + 1, "sudo -s", chain)
        return None
    return rest


def _w_env(an: _Analyzer, args: list[Word], depth: int, text: str, chain: tuple[str, ...]) -> list[Word] | None:
    i = 0
    while i < len(args):
        a = args[i].value
        if a == "--":
            i += 1
            break
        if a in ("-u", "--unset", "-C", "--chdir"):
            i += 2
            continue
        if a in ("-S", "--split-string") and i + 1 < len(args):
            # env -S 'prog args': the string is split into an argv
            an.script(" ".join(_vals(args[i + 1 :])), depth + 1, "env -S", chain)
            return None
        if a.startswith("-S") and len(a) > 2:
            an.script(a[2:] + " " + " ".join(_vals(args[i + 1 :])), depth + 1, "env -S", chain)
            return None
        if a.startswith("-") and len(a) > 1:
            i += 1
            continue
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", a, re.S):
            i += 1
            continue
        break
    return args[i:]


def _w_simple(with_arg: str = "", long_with_arg: Sequence[str] = (), positional: int = 0) -> _Wrapper:
    """A wrapper with options then (after `positional` fixed arguments) the command."""

    def w(an: _Analyzer, args: list[Word], depth: int, text: str, chain: tuple[str, ...]) -> list[Word] | None:
        rest, _, _ = _skip_options(args, with_arg, long_with_arg)
        return rest[positional:]

    return w


def _w_time(an: _Analyzer, args: list[Word], depth: int, text: str, chain: tuple[str, ...]) -> list[Word] | None:
    rest, _, values = _skip_options(args, "fo", ("--format", "--output"))
    out = values.get("-o") or values.get("--output")
    if out:
        risk, reason = _write_target_risk(Word(out, prefix=out), "time -o")
        an.add(("time", "-o", out), risk, reason, text, chain)
    return rest


def _w_command(an: _Analyzer, args: list[Word], depth: int, text: str, chain: tuple[str, ...]) -> list[Word] | None:
    rest, flags, _ = _skip_options(args)
    if {"-v", "-V"} & flags:
        an.add(("command", *_vals(args)), RO, "command -v only looks a name up", text, chain)
        return None
    return rest


def _w_exec(an: _Analyzer, args: list[Word], depth: int, text: str, chain: tuple[str, ...]) -> list[Word] | None:
    rest, _, _ = _skip_options(args, "a")
    return rest


def _w_ionice(an: _Analyzer, args: list[Word], depth: int, text: str, chain: tuple[str, ...]) -> list[Word] | None:
    rest, flags, _ = _skip_options(args, "cnpPu", ("--class", "--classdata", "--pid", "--pgid", "--uid"))
    if not rest and {"-p", "-P", "-u", "--pid", "--pgid", "--uid"} & flags:
        an.add(("ionice", *_vals(args)), MUT, "ionice changes the I/O priority of running processes", text, chain)
        return None
    return rest


def _w_nice(an: _Analyzer, args: list[Word], depth: int, text: str, chain: tuple[str, ...]) -> list[Word] | None:
    i = 0
    while i < len(args):
        a = args[i].value
        if a in ("-n", "--adjustment"):
            i += 2
        elif re.fullmatch(r"-n?-?\d+|--adjustment=.*", a):
            i += 1
        elif a == "--":
            i += 1
            break
        else:
            break
    return args[i:]


def _w_timeout(an: _Analyzer, args: list[Word], depth: int, text: str, chain: tuple[str, ...]) -> list[Word] | None:
    rest, _, _ = _skip_options(args, "ks", ("--kill-after", "--signal"))
    return rest[1:]  # the duration


def _w_xargs(an: _Analyzer, args: list[Word], depth: int, text: str, chain: tuple[str, ...]) -> list[Word] | None:
    rest, flags, values = _skip_options(
        args, "IaEdLnsP",
        ("--arg-file", "--delimiter", "--eof", "--replace", "--max-lines", "--max-args", "--max-chars", "--max-procs", "--process-slot-var"),
    )
    if not rest:
        rest = [Word("echo")]
    if an.stdin is not None:
        sep = "\0" if {"-0", "--null"} & flags else (values.get("-d") or values.get("--delimiter"))
        items = [x for x in (an.stdin.split(sep) if sep else an.stdin.split()) if x.strip()][:32]
        repl = values.get("-I") or values.get("--replace") or ("{}" if "-i" in flags else None)
        if items and repl:
            saved = an.stdin
            for item in items:
                an.stdin = None
                an.argv([Word(w.value.replace(repl, item.strip()), w.dynamic, w.prefix, quoted=w.quoted) for w in rest], depth, text, chain)
            an.stdin = saved
            return None
        if items:
            return rest + [Word(x.strip(), prefix=x.strip()) for x in items]
    # xargs feeds its input as more arguments: unknown values, possibly `/`
    repl = values.get("-I") or values.get("--replace") or ("{}" if "-i" in flags else None)
    if repl and any(repl in w.value for w in rest[1:]):
        return [rest[0]] + [
            Word(w.value, dynamic=True, prefix=w.value.split(repl)[0], quoted=w.quoted, many=True) if repl in w.value else w
            for w in rest[1:]
        ]
    return rest + [Word("<xargs-input>", dynamic=True, prefix="", many=True)]


def _w_shell(an: _Analyzer, args: list[Word], depth: int, text: str, chain: tuple[str, ...]) -> list[Word] | None:
    prog = chain[-1]
    i = 0
    has_c = False
    while i < len(args):
        a = args[i].value
        if a == "--":
            i += 1
            break
        if a in ("-o", "+o", "-O", "+O", "--rcfile", "--init-file"):
            i += 2
            continue
        if a.startswith(("-", "+")) and len(a) > 1 and not args[i].quoted:
            if not a.startswith("--") and "c" in a:
                has_c = True
            i += 1
            continue
        break
    rest = args[i:]
    reads_stdin = not has_c and (not rest or "s" in "".join(w.value for w in args[:i] if w.value.startswith("-") and not w.value.startswith("--")) or rest[0].value in ("-", "/dev/stdin"))
    if reads_stdin and an.stdin is not None:
        an.script(an.stdin, depth + 1, f"the script fed to {prog}", chain)
        return None
    if has_c:
        if not rest:
            an.add((prog, "-c"), RO, f"{prog} -c without a command", text, chain)
            return None
        code = rest[0]
        an.script(code.value, depth + 1, f"the {prog} -c string", chain)
        if code.dynamic and re.fullmatch(r"\s*\$\{?\w+\}?\s*", code.value):
            an.add((prog, "-c", code.value), DES, f"{prog} -c runs {code.value}, code only known at run time", text, chain)
        return None
    if rest:
        an.add((prog, *_vals(rest)), MUT, f"{prog} {rest[0].value} runs a script whose effect is unknown", text, chain)
    else:
        an.add((prog,), MUT, f"{prog} runs a script read from its input, whose effect is unknown", text, chain)
    return None


def _w_eval(an: _Analyzer, args: list[Word], depth: int, text: str, chain: tuple[str, ...]) -> list[Word] | None:
    code = " ".join(_vals(args))
    if any(w.dynamic for w in args):
        an.add(("eval", *_vals(args)), DES, "eval of text only known at run time", text, chain)
    an.script(code, depth + 1, "the eval string", chain)
    return None


def _w_su(an: _Analyzer, args: list[Word], depth: int, text: str, chain: tuple[str, ...]) -> list[Word] | None:
    if chain and chain[-1] == "runuser":
        # `runuser -u USER [--] CMD...` runs CMD directly (no shell, no -c): unwrap it
        rest, _, values = _skip_options(args, "ugGw", ("--user", "--group", "--supp-group", "--whitelist-environment"))
        if rest and ("-u" in values or "--user" in values):
            return rest
    vals = _vals(args)
    for i, v in enumerate(vals):
        if v in ("-c", "--command") and i + 1 < len(vals):
            an.script(vals[i + 1], depth + 1, "the su -c string", chain)
            return None
        if v.startswith("--command="):
            an.script(v.split("=", 1)[1], depth + 1, "the su -c string", chain)
            return None
    an.add(("su", *vals), MUT, "su opens a shell as another user", text, chain)
    return None


_FIND_OPTS_WITH_ARG = {"-D", "-O"}


def _w_find(an: _Analyzer, args: list[Word], depth: int, text: str, chain: tuple[str, ...]) -> list[Word] | None:
    vals = _vals(args)
    # starting points: the words before the expression (`find [-H -L -P] [-D x] PATH... EXPR`)
    k = 0
    starts: list[Word] = []
    while k < len(args):
        v = vals[k]
        if v in ("-H", "-L", "-P"):
            k += 1
        elif v in _FIND_OPTS_WITH_ARG:
            k += 2
        elif v.startswith("-") or v in ("(", "!", ","):
            break
        else:
            starts.append(args[k])
            k += 1
    # the base of `{}`: the single starting point, or the most sensitive of several
    sensitive = [w for w in starts if not w.dynamic and is_system_path(w.value)]
    root = sensitive[0] if sensitive else starts[0] if len(starts) == 1 and not starts[0].dynamic else None
    found = False
    i = k
    while i < len(vals):
        v = vals[i]
        if v == "-delete":
            an.add(("find", *vals), DES, "find -delete deletes every file it matches", text, chain)
            found = True
        elif v in ("-exec", "-execdir", "-ok", "-okdir"):
            j = i + 1
            inner: list[Word] = []
            while j < len(vals) and vals[j] not in (";", "+"):
                w = args[j]
                if "{}" in w.value:
                    # `{}` is each path found: under the single starting point if there is one
                    base = root.value.rstrip("/") + "/" if root is not None and w.value.startswith("{}") else ""
                    w = Word(base + w.value, dynamic=True, prefix=base + w.value.split("{}")[0], quoted=w.quoted, many=True)
                inner.append(w)
                j += 1
            saved, an.stdin = an.stdin, None
            an.argv(inner, depth, text, chain)
            an.stdin = saved
            found = True
            i = j
        elif v in ("-fprint", "-fprint0", "-fls", "-fprintf") and i + 1 < len(vals):
            risk, reason = _write_target_risk(args[i + 1], f"find {v}")
            an.add(("find", *vals), max(risk, RO), reason, text, chain)
            found = True
        i += 1
    if not found:
        an.add(("find", *vals), RO, "find without actions only lists", text, chain)
    return None


def _w_watch(an: _Analyzer, args: list[Word], depth: int, text: str, chain: tuple[str, ...]) -> list[Word] | None:
    rest, flags, _ = _skip_options(args, "nqd", ("--interval", "--differences", "--equexit"))
    if "-x" in flags or "--exec" in flags:
        return rest
    an.script(" ".join(_vals(rest)), depth + 1, "the watch command", chain)
    return None


def _w_alias(an: _Analyzer, args: list[Word], depth: int, text: str, chain: tuple[str, ...]) -> list[Word] | None:
    """`alias x='rm -rf /'`: judge the alias by what it would run."""
    defined = False
    for w in args:
        name, eq, value = w.value.partition("=")
        if eq and value.strip():
            defined = True
            an.script(value, depth + 1, f"the alias {name}", chain)
    if not defined:
        an.add(("alias", *_vals(args)), RO, "alias only lists aliases", text, chain)
    return None


def _w_trap(an: _Analyzer, args: list[Word], depth: int, text: str, chain: tuple[str, ...]) -> list[Word] | None:
    vals = _vals(args)
    if len(vals) >= 2 and not vals[0].startswith("-"):
        an.script(vals[0], depth + 1, "the trap handler", chain)
    else:
        an.add(("trap", *vals), RO, "trap lists or resets handlers", text, chain)
    return None


def _w_ssh(an: _Analyzer, args: list[Word], depth: int, text: str, chain: tuple[str, ...]) -> list[Word] | None:
    rest, _, _ = _skip_options(args, "bcDEeFIiJLlmOoQRSWwpB")
    if len(rest) <= 1:
        an.add(("ssh", *_vals(args)), MUT, "ssh opens an interactive session on another host", text, chain)
        return None
    an.script(" ".join(_vals(rest[1:])), depth + 1, "the remote ssh command", chain)
    return None


def _w_docker(an: _Analyzer, args: list[Word], depth: int, text: str, chain: tuple[str, ...]) -> list[Word] | None:
    """`docker exec CONTAINER cmd...` runs cmd: classify it; anything else is a docker verb."""
    prog = chain[-1]
    rest, _, _ = _skip_options(args, "Hcl", ("--host", "--context", "--config", "--log-level"))
    if rest and rest[0].value == "exec" or rest[:2] and [w.value for w in rest[:2]] == ["container", "exec"]:
        skip = 1 if rest[0].value == "exec" else 2
        inner, _, _ = _skip_options(rest[skip:], "euw", ("--env", "--user", "--workdir", "--env-file", "--detach-keys"))
        if len(inner) > 1:
            return inner[1:]
    risk, reason = _docker(prog, args)
    an.add((prog, *_vals(args)), risk, reason, text, chain)
    return None


def _w_flock(an: _Analyzer, args: list[Word], depth: int, text: str, chain: tuple[str, ...]) -> list[Word] | None:
    vals = _vals(args)
    for i, v in enumerate(vals):
        if v in ("-c", "--command") and i + 1 < len(vals):
            an.script(vals[i + 1], depth + 1, "the flock -c string", chain)
            return None
    rest, _, _ = _skip_options(args, "wEn", ("--timeout", "--conflict-exit-code"))
    return rest[1:]


def _w_chroot(an: _Analyzer, args: list[Word], depth: int, text: str, chain: tuple[str, ...]) -> list[Word] | None:
    rest, _, _ = _skip_options(args, "", ("--userspec", "--groups"))
    if len(rest) <= 1:
        an.add(("chroot", *_vals(args)), MUT, "chroot opens a shell in another root", text, chain)
        return None
    return rest[1:]


def _w_busybox(an: _Analyzer, args: list[Word], depth: int, text: str, chain: tuple[str, ...]) -> list[Word] | None:
    if not args or args[0].value.startswith("-"):
        an.add(("busybox", *_vals(args)), RO, "busybox lists its applets", text, chain)
        return None
    return args


_WRAPPERS: dict[str, _Wrapper] = {
    "sudo": _w_sudo,
    "doas": _w_simple("uC"),
    "pkexec": _w_simple("", ("--user",)),
    "run0": _w_simple("u", ("--user",)),
    "env": _w_env,
    "nohup": _w_simple(),
    "setsid": _w_simple(),
    "unbuffer": _w_simple(),
    "timeout": _w_timeout,
    "nice": _w_nice,
    "ionice": _w_ionice,
    "chrt": _w_simple("", (), 1),
    "taskset": _w_simple("", (), 1),
    "stdbuf": _w_simple("ioe", ("--input", "--output", "--error")),
    "time": _w_time,
    "command": _w_command,
    "builtin": _w_simple(),
    "exec": _w_exec,
    "xargs": _w_xargs,
    "sh": _w_shell,
    "bash": _w_shell,
    "dash": _w_shell,
    "zsh": _w_shell,
    "ksh": _w_shell,
    "ash": _w_shell,
    "fish": _w_shell,
    "eval": _w_eval,
    "su": _w_su,
    "runuser": _w_su,
    "find": _w_find,
    "watch": _w_watch,
    "trap": _w_trap,
    "alias": _w_alias,
    "ssh": _w_ssh,
    "flock": _w_flock,
    "chroot": _w_chroot,
    "busybox": _w_busybox,
    "docker": _w_docker,
    "podman": _w_docker,
    "strace": _w_simple("eoOpPsSuUXbEI"),
    "ltrace": _w_simple("eoOpPsSuUXbEI"),
    "catchsegv": _w_simple(),
    # run a program in another namespace / unit / credential set: judge the program
    "systemd-run": _w_simple("upEMH", ("--unit", "--property", "--setenv", "--machine", "--host", "--description", "--slice", "--uid", "--gid", "--nice", "--working-directory", "--on-active", "--on-boot", "--on-startup", "--on-unit-active", "--on-unit-inactive", "--on-calendar", "--timer-property", "--path-property", "--socket-property", "--service-type")),
    "nsenter": _w_simple("tSG", ("--target", "--setuid", "--setgid")),
    "unshare": _w_simple("SGRw", ("--setuid", "--setgid", "--root", "--wd", "--propagation", "--setgroups", "--map-user", "--map-group", "--map-users", "--map-groups")),
    "setpriv": _w_simple("", ("--reuid", "--regid", "--ruid", "--rgid", "--euid", "--egid", "--groups", "--inh-caps", "--ambient-caps", "--bounding-set", "--securebits", "--pdeathsig", "--selinux-label", "--apparmor-profile")),
}


# ---------------------------------------------------------------- leaf programs

_READ_ONLY = frozenset("""
ls ll dir vdir cat tac head tail less more most grep egrep fgrep rg ag ack zgrep zegrep zfgrep zcat
bzcat xzcat zstdcat lzcat zless zmore bzgrep xzgrep df du free uptime w who whoami id groups last
lastb lastlog users ps pgrep pstree pidof htop btop atop vmstat iostat mpstat sar pidstat
lsof ss netstat uname stat file wc cut tr nl paste join comm diff diff3 sdiff cmp column fold fmt
expand unexpand rev od hexdump strings md5sum sha1sum sha224sum sha256sum sha384sum sha512sum
b2sum cksum sum base32 base64 basename dirname realpath readlink which whereis type locate mlocate
plocate echo printf true false test [ [[ seq yes sleep tree lsblk blkid lscpu lsmem lspci lsusb
lsmod lsns lsipc lslocks lslogins dmidecode getent nproc arch printenv tty locale
getconf jq dig nslookup host drill ping ping6 traceroute traceroute6 tracepath mtr whois
pwd cd pushd popd dirs export unset set shopt local declare typeset readonly let getopts shift
exit return break continue wait jobs read hash unalias umask ulimit history help :
getfacl lsattr namei findmnt ldd nm objdump readelf getcap iotop ncdu cal expr bc dc factor numfmt
tsort look apropos whatis man info pinky logname systemd-detect-virt systemd-analyze systemd-cgls
systemd-cgtop busctl sensors acpi inxi neofetch lshw hwinfo nvidia-smi lvs vgs pvs lvdisplay
vgdisplay pvdisplay lvscan vgscan pvscan sync nstat ifstat iftop nethogs nload bmon vnstat tcpdump
tshark arp route showmount rpcinfo nmap lsb_release zipinfo zdiff zcmp debsums aa-status sestatus
getenforce ipcs ethtool iwconfig iw mountpoint fuser diffstat colordiff bat batcat fd fdfind exa
eza tldr glances dstat ccze lnav multitail goaccess aureport ausearch identify xmllint yamllint
shellcheck hadolint ssh-keyscan needrestart checkrestart free uptime java go rustc cargo whoami
varnishstat varnishlog varnishtop named-checkconf named-checkzone mailq doveconf slabtop
pgrep lsof
""".split())
# `mtr`, `tcpdump`, `nmap` etc. only observe; `go`/`java`/`cargo` are listed so `--version` flows,
# their build/run subcommands are handled below.


def _rm(prog: str, args: list[Word]) -> _Result:
    flags, _, paths = _split_opts(args)
    recursive = {"-r", "-R", "--recursive"} & flags
    if "--no-preserve-root" in flags:
        return DES, "rm --no-preserve-root can delete the whole filesystem"
    shown = " ".join(_vals(paths)) or "its input"
    if recursive:
        return DES, f"rm -r on {shown} deletes a whole tree"
    for p in paths:
        if p.many:
            return DES, f"rm of {p.value} deletes every path find or xargs passes it"
        if _unknown_path(p):
            return DES, f"rm of {p.value} deletes paths only known at run time"
        if is_system_path(p.value):
            return DES, f"rm of {p.value} deletes a system file or directory"
    return MUT, f"rm deletes {shown}"


def _unlink(prog: str, args: list[Word]) -> _Result:
    for p in args:
        if p.many or _unknown_path(p) or is_system_path(p.value):
            return DES, f"{prog} of {p.value} deletes a system file"
    return MUT, f"{prog} deletes {' '.join(_vals(args))}"


def _always_destructive(why: str) -> Callable[[str, list[Word]], _Result]:
    def h(prog: str, args: list[Word]) -> _Result:
        return DES, f"{prog} {why}"

    return h


def _dd(prog: str, args: list[Word]) -> _Result:
    for w in args:
        if w.value.startswith("of="):
            target = Word(w.value[3:], w.dynamic, w.prefix[3:] if w.prefix.startswith("of=") else "")
            if _sink(target):
                return RO, "dd to /dev/null only reads"
            if target.dynamic or target.value.startswith("/dev/") or is_critical_file(target.value) or is_system_path(target.value):
                return DES, f"dd of={target.value} overwrites a device or system file"
            return MUT, f"dd writes {target.value}"
    return RO, "dd without of= writes to stdout"


def _partition_tool(prog: str, args: list[Word]) -> _Result:
    vals = _vals(args)
    ro = {"-l", "--list", "-s", "--show", "-p", "--print", "-d", "--dump", "-V", "--verify",
          "--version", "-v", "-h", "--help", "-i", "--info", "-J", "--json"}
    if prog == "parted" and any(v in ("print", "-l", "--list") for v in vals) and not any(
        v in ("mklabel", "mkpart", "rm", "resizepart", "mkfs", "name", "set", "rescue") for v in vals
    ):
        return RO, "parted print only reads the partition table"
    if vals and all(v in ro or v.startswith("/dev/") for v in vals) and any(v in ro for v in vals):
        return RO, f"{prog} listing only reads the partition table"
    return DES, f"{prog} rewrites partition tables"


def _truncate(prog: str, args: list[Word]) -> _Result:
    _, _, paths = _split_opts(args, "sr", ("--size", "--reference"))
    for p in paths:
        if _unknown_path(p) or is_critical_file(p.value) or is_system_path(p.value):
            return DES, f"truncate of {p.value} destroys a system file"
    return MUT, f"truncate changes the size of {' '.join(_vals(paths))}"


def _chmod_like(prog: str, args: list[Word]) -> _Result:
    recursive = any(a.value in ("-R", "--recursive") or re.fullmatch(r"-[a-zA-Z]*R[a-zA-Z]*", a.value) for a in args)
    # chmod's symbolic modes (-x, -rwx) look like options: take operands by position instead
    operands = [a for a in args if not re.fullmatch(r"-[a-zA-Z]+|--[a-z-]+(=.*)?", a.value) or (
        prog == "chmod" and re.fullmatch(r"[-+=][rwxXst]+", a.value) and not re.fullmatch(r"-[RvcfH]+", a.value))]
    if any(a.value.startswith("--reference") for a in args):
        targets = operands
    else:
        targets = operands[1:]
    if prog == "chmod" and operands:
        mode = operands[0].value
        if re.fullmatch(r"0+", mode) or re.fullmatch(r"[ugoa]*(-rwx|-rwxst|=)", mode):
            return DES, f"chmod {mode} removes all access to {' '.join(_vals(targets))}"
    if prog in ("setfacl", "chattr"):
        targets = operands
    for t in targets:
        if recursive and (_unknown_path(t) or _is_permission_root(t.value)):
            return DES, f"{prog} -R on {t.value} changes a whole system tree"
        if t.many and t.prefix and _is_permission_root(t.prefix.rstrip("/") or "/"):
            return DES, f"{prog} on every file under {t.prefix or 'an unknown directory'} changes a whole system tree"
        if not recursive and (is_critical_file(t.value) or _norm_path(t.value) == "/"):
            return DES, f"{prog} on {t.value} changes a critical system path"
    return MUT, f"{prog} changes permissions or ownership of {' '.join(_vals(targets))}"


def _mv(prog: str, args: list[Word]) -> _Result:
    flags, values, pos = _split_opts(args, "tS", ("--target-directory", "--suffix"))
    target = values.get("-t") or values.get("--target-directory")
    sources = pos if target else pos[:-1]
    dest = target if target else (pos[-1].value if pos else "")
    for s in sources:
        if _unknown_path(s) or is_system_path(s.value):
            return DES, f"{prog} of {s.value} moves a system file or directory away"
    if dest and (is_critical_file(dest) or _norm_path(dest) in ("/", "/dev/null")):
        return DES, f"{prog} onto {dest} overwrites a system path"
    return MUT, f"{prog} changes files ({' '.join(_vals(pos))})"


def _cp(prog: str, args: list[Word]) -> _Result:
    flags, values, pos = _split_opts(args, "tS", ("--target-directory", "--suffix"))
    dest = values.get("-t") or values.get("--target-directory") or (pos[-1].value if len(pos) > 1 else "")
    if dest and (is_critical_file(dest) or is_block_device(dest)):
        return DES, f"{prog} onto {dest} overwrites a critical system file or device"
    return MUT, f"{prog} writes {dest or 'files'}"


def _ln(prog: str, args: list[Word]) -> _Result:
    flags, values, pos = _split_opts(args, "tS", ("--target-directory", "--suffix"))
    dest = values.get("-t") or (pos[-1].value if len(pos) > 1 else "")
    if dest and is_critical_file(dest) and ({"-f", "--force"} & flags):
        return DES, f"ln -f onto {dest} replaces a critical system file"
    return MUT, f"{prog} creates a link"


def _tee(prog: str, args: list[Word]) -> _Result:
    _, _, files = _split_opts(args, "", ())
    worst: _Result = (RO, "tee without files only copies to stdout")
    for f in files:
        r = _write_target_risk(f, "tee to")
        if r[0] > worst[0]:
            worst = r
    return worst


def _sed(prog: str, args: list[Word]) -> _Result:
    flags, values, pos = _split_opts(args, "ef", ("--expression", "--file", "--line-length"))
    in_place = any(re.fullmatch(r"-[a-zA-Z]*i.*", a.value) and not a.value.startswith("--") for a in args) or any(
        f.startswith("--in-place") for f in flags
    )
    scripts = [values[k] for k in ("-e", "--expression") if k in values]
    if not scripts and pos:
        scripts = [pos[0].value]
        files = pos[1:]
    else:
        files = pos
    if in_place:
        for f in files:
            if is_critical_file(f.value):
                return DES, f"sed -i on {f.value} edits a critical system file"
        return MUT, f"sed -i edits {' '.join(_vals(files)) or 'files'} in place"
    for s in scripts:
        # `s/a/b/w FILE`, `s/a/b/e`, and the `w FILE` / `W FILE` / `e CMD` commands (with an address)
        if re.search(r"s(.)(?:(?!\1).)*\1(?:(?!\1).)*\1[gpiImM0-9]*[we]", s) or re.search(
            r"(^|[;\n{}])\s*(\d+|\$|/[^/]*/)?(,(\d+|\$|/[^/]*/))?\s*!?\s*[wWe](\s|;|$)", s
        ):
            return MUT, "the sed script writes files or runs commands (w/e)"
    return RO, "sed without -i only prints"


def _awk(prog: str, args: list[Word]) -> _Result:
    flags, values, pos = _split_opts(args, "fvFi", ("--file", "--assign", "--field-separator", "--include"))
    if values.get("-i") == "inplace" or "--inplace" in flags:
        return MUT, f"{prog} -i inplace edits files"
    if "-f" in values or "--file" in values:
        return MUT, f"{prog} -f runs a program file whose effect is unknown"
    prog_text = pos[0].value if pos else ""
    if re.search(r"\bsystem\s*\(", prog_text):
        # system("...") with a literal command: judge that command, so --yes cannot run `rm -rf /`
        worst: _Result = (MUT, f"the {prog} program calls system()")
        for shell in re.findall(r'\bsystem\s*\(\s*"((?:[^"\\]|\\.)*)"', prog_text):
            sub = classify_at(shell, 1)
            if sub.risk > worst[0]:
                worst = (sub.risk, f"the {prog} program runs `{shell}`: {sub.summary}")
        return worst
    if re.search(r"\bprintf?\b[^;{}]*?(>|\|)", prog_text) or re.search(r"\|\s*&?\s*getline", prog_text):
        return MUT, f"the {prog} program writes to a file or a command"
    return RO, f"{prog} only prints"


def _curl(prog: str, args: list[Word]) -> _Result:
    flags, values, _ = _split_opts(
        args, "odFTXHuAebcKmxwrCEyYzUQDt",
        ("--output", "--data", "--data-raw", "--data-binary", "--data-urlencode", "--form", "--upload-file",
         "--request", "--header", "--user", "--user-agent", "--referer", "--cookie", "--cookie-jar", "--config",
         "--max-time", "--proxy", "--write-out", "--range", "--continue-at", "--cert", "--json", "--dump-header",
         "--output-dir", "--url", "--resolve", "--connect-timeout", "--retry", "--key", "--cacert"),
    )
    method = (values.get("-X") or values.get("--request") or "GET").upper()
    if method not in ("GET", "HEAD", "OPTIONS"):
        return MUT, f"curl sends a {method} request"
    for k in ("-d", "-F", "-T", "--data", "--data-raw", "--data-binary", "--data-urlencode", "--form", "--upload-file", "--json"):
        if k in values:
            return MUT, f"curl {k} sends data (a POST or upload)"
    for k in ("-o", "--output", "-D", "--dump-header", "-c", "--cookie-jar"):
        if k in values and values[k] not in _SAFE_SINKS:
            w = Word(values[k], prefix=values[k])
            risk, reason = _write_target_risk(w, f"curl {k}")
            return max(risk, MUT), reason
    if {"-O", "--remote-name", "--remote-name-all", "-J"} & flags:
        return MUT, "curl -O saves the download to a file"
    return RO, "curl only fetches to stdout"


def _wget(prog: str, args: list[Word]) -> _Result:
    flags, values, _ = _split_opts(
        args, "OoaPtTwQeUBiDIX",
        ("--output-document", "--output-file", "--append-output", "--directory-prefix", "--post-data",
         "--post-file", "--method", "--body-data", "--header", "--user", "--password", "--tries", "--timeout"),
    )
    if {"--post-data", "--post-file", "--body-data"} & set(values) or values.get("--method", "GET").upper() not in ("GET", "HEAD"):
        return MUT, "wget sends data (a POST or another method)"
    out = values.get("-O") or values.get("--output-document")
    if "--spider" in flags:
        return RO, "wget --spider only checks"
    if out in ("-", "/dev/null", "/dev/stdout"):
        log = values.get("-o") or values.get("--output-file")
        if log and log not in _SAFE_SINKS:
            return MUT, f"wget -o writes the log {log}"
        return RO, "wget -O - only fetches to stdout"
    if out:
        return _write_target_risk(Word(out, prefix=out), "wget -O")
    return MUT, "wget saves the download to a file"


_SSH_UNITS = {"ssh", "sshd", "ssh.socket", "sshd.socket", "openssh-server", "dropbear"}
_NETWORK_UNITS = {"networking", "network", "networkmanager", "systemd-networkd", "network-manager",
                  "wicked", "netplan", "systemd-networkd.socket", "dbus", "systemd-logind", "systemd-journald"}
_SYSTEMCTL_RO = {"status", "is-active", "is-enabled", "is-failed", "is-system-running", "list-units",
                 "list-unit-files", "list-timers", "list-sockets", "list-dependencies", "list-jobs",
                 "list-machines", "list-automounts", "list-paths", "show", "cat", "help", "get-default",
                 "show-environment", "--version", "-h", "--help"}
_SYSTEMCTL_POWER = {"poweroff", "reboot", "halt", "kexec", "emergency", "rescue", "isolate",
                    "suspend", "hibernate", "hybrid-sleep", "suspend-then-hibernate", "soft-reboot", "default"}


def _unit(name: str) -> str:
    n = name.lower()
    for suffix in (".service", ".target"):
        if n.endswith(suffix):
            n = n[: -len(suffix)]
    return n


def _systemctl(prog: str, args: list[Word]) -> _Result:
    rest, flags, _ = _skip_options_anywhere(args, "tHMpPnso", ("--type", "--state", "--host", "--machine", "--property", "--lines", "--signal", "--output", "--root", "--kill-whom", "--job-mode", "--what"))
    if not rest:
        return RO, "systemctl lists units"
    verb = rest[0].value
    units = [_unit(w.value) for w in rest[1:]]
    if verb in _SYSTEMCTL_RO:
        return RO, f"systemctl {verb} only reads"
    if verb in _SYSTEMCTL_POWER:
        return DES, f"systemctl {verb} takes the whole server down or changes its state"
    if verb in ("stop", "disable", "mask", "kill", "try-restart") or (verb == "disable" and "--now" in flags):
        for u in units:
            if u in _SSH_UNITS or u in _NETWORK_UNITS:
                return DES, f"systemctl {verb} {u} can cut off remote access to the server"
    if verb == "isolate":
        return DES, "systemctl isolate switches the system target"
    return MUT, f"systemctl {verb} {' '.join(units)} changes a service".replace("  ", " ")


def _skip_options_anywhere(args: list[Word], with_arg: str, long_with_arg: Sequence[str]) -> tuple[list[Word], set[str], dict[str, str]]:
    flags, values, pos = _split_opts(args, with_arg, long_with_arg)
    return pos, flags, values


def _service(prog: str, args: list[Word]) -> _Result:
    vals = _vals(args)
    if not vals or vals[0] in ("--status-all", "--help", "--version", "-h"):
        return RO, "service lists services"
    name = _unit(vals[0])
    action = vals[1] if len(vals) > 1 else ""
    if action in ("status", ""):
        return RO, f"service {name} status only reads"
    if action == "stop" and (name in _SSH_UNITS or name in _NETWORK_UNITS):
        return DES, f"service {name} stop can cut off remote access to the server"
    return MUT, f"service {name} {action} changes a service"


def _journalctl(prog: str, args: list[Word]) -> _Result:
    for w in args:
        v = w.value.split("=", 1)[0]
        if v in ("--vacuum-size", "--vacuum-time", "--vacuum-files", "--rotate", "--flush", "--sync",
                 "--relinquish-var", "--smart-relinquish-var", "--setup-keys", "--update-catalog"):
            return MUT, f"journalctl {v} changes the journal"
    return RO, "journalctl only reads logs"


def _dmesg(prog: str, args: list[Word]) -> _Result:
    flags, _, _ = _split_opts(args, "fFlnsS", ("--facility", "--level", "--console-level", "--buffer-size", "--file", "--time-format", "--since", "--until"))
    if {"-c", "-C", "--clear", "--read-clear", "-n", "--console-level", "-D", "-E", "--console-off", "--console-on"} & flags:
        return MUT, "dmesg clears or reconfigures the kernel log"
    return RO, "dmesg only reads"


_OPENSSL_RO = {"x509", "s_client", "version", "verify", "crl", "asn1parse", "ciphers", "list", "req",
               "rsa", "ec", "pkey", "dgst", "sha256", "sha1", "md5", "speed", "errstr", "pkcs7",
               "pkcs12", "sess_id", "ocsp", "storeutl", "base64", "enc", "rand", "prime", "s_time", "help"}


def _openssl(prog: str, args: list[Word]) -> _Result:
    vals = _vals(args)
    if not vals:
        return MUT, "openssl opens an interactive prompt"
    sub = vals[0]
    writes = any(v in ("-out", "-keyout", "-new", "-newkey", "-signkey") for v in vals)
    if sub in _OPENSSL_RO and not writes and not (sub == "enc" and "-d" not in vals and "-in" not in vals):
        return RO, f"openssl {sub} only reads"
    return MUT, f"openssl {sub} writes keys or files"


_DOCKER_RO = {"ps", "logs", "inspect", "images", "version", "info", "top", "port", "diff", "history",
              "events", "search", "stats", "help", "--version", "-v", "--help"}
_DOCKER_GROUP_RO = {"ls", "list", "inspect", "logs", "ps", "top", "stats", "port", "diff", "history",
                    "df", "info", "events", "show", "config", "images", "version", "get", "view"}


def _docker(prog: str, args: list[Word]) -> _Result:
    rest, _, _ = _skip_options(args, "Hcl", ("--host", "--context", "--config", "--log-level", "--tlscacert", "--tlscert", "--tlskey", "--url", "--connection"))
    if not rest:
        return RO, f"{prog} shows help"
    sub = rest[0].value
    more = rest[1:]
    flags, _, pos = _split_opts(more, "fpe", ("--filter", "--format", "--file", "--project-name", "--env-file", "--profile"))
    if sub in ("compose", "container", "image", "volume", "network", "system", "builder", "context", "node", "service", "stack", "secret", "config", "plugin", "buildx", "swarm", "manifest", "trust"):
        group = sub
        action = pos[0].value if pos else ""
        if not action:
            return RO, f"{prog} {group} shows help"
        if action in _DOCKER_GROUP_RO and not (group == "stats" and "--no-stream" not in flags):
            return RO, f"{prog} {group} {action} only reads"
        if group == "compose" and action == "down" and ({"-v", "--volumes"} & flags):
            return DES, f"{prog} compose down -v deletes the volumes and their data"
        if action in ("prune",) and group in ("system", "volume", "container"):
            return DES, f"{prog} {group} prune deletes data irreversibly"
        if group == "volume" and action in ("rm", "remove"):
            return DES, f"{prog} volume rm deletes the volume's data"
        if group == "container" and action in ("rm", "remove") and ({"-f", "--force", "-v", "--volumes"} & flags):
            return DES, f"{prog} container rm -f deletes running containers"
        if group == "swarm" and action == "leave" and {"-f", "--force"} & flags:
            return DES, f"{prog} swarm leave --force destroys the swarm state"
        return MUT, f"{prog} {group} {action} changes containers or images"
    if sub in _DOCKER_RO:
        return RO, f"{prog} {sub} only reads"
    if sub == "rm" and ({"-f", "--force", "-v", "--volumes"} & flags):
        return DES, f"{prog} rm -f deletes running containers"
    if sub == "exec":
        return MUT, f"{prog} exec runs a command in a container"
    return MUT, f"{prog} {sub} changes containers or images"


_GIT_RO = {"status", "log", "diff", "show", "rev-parse", "describe", "ls-files", "ls-tree", "ls-remote",
           "blame", "shortlog", "grep", "cat-file", "show-ref", "whatchanged", "version", "help",
           "count-objects", "for-each-ref", "name-rev", "reflog", "rev-list", "show-branch", "merge-base",
           "diff-tree", "diff-files", "diff-index", "var", "check-ignore", "annotate", "--version", "fsck"}


def _git(prog: str, args: list[Word]) -> _Result:
    rest, _, _ = _skip_options(args, "Cc", ("--git-dir", "--work-tree", "--namespace", "--exec-path", "--config-env"))
    if not rest:
        return RO, "git shows help"
    sub = rest[0].value
    more = rest[1:]
    flags, values, pos = _split_opts(more, "mnCeSuo", ("--message", "--format", "--author", "--since", "--until", "--pretty"))
    vals = _vals(more)
    if sub == "reflog" and pos and pos[0].value in ("expire", "delete"):
        return DES, "git reflog expire/delete drops recovery points"
    if sub in _GIT_RO:
        return RO, f"git {sub} only reads"
    if sub == "branch" and not ({"-d", "-D", "-m", "-M", "-c", "-C", "--delete", "--move", "--copy", "-u", "--set-upstream-to", "--unset-upstream", "-f", "--force", "--edit-description"} & flags) and not pos:
        return RO, "git branch only lists"
    if sub == "branch" and ("-D" in flags or ({"-d", "--delete"} & flags and {"-f", "--force"} & flags)):
        return DES, "git branch -D deletes an unmerged branch"
    if sub == "tag" and (not vals or {"-l", "--list", "-n", "--contains", "--points-at"} & flags) and not ({"-d", "-a", "-s", "-f"} & flags):
        return RO, "git tag only lists"
    if sub == "remote" and (not pos or pos[0].value in ("show", "get-url")):
        return RO, "git remote only lists"
    if sub == "config" and ({"--get", "--get-all", "--list", "-l", "--get-regexp", "--show-origin"} & flags or (len(pos) == 1 and not flags - {"--global", "--system", "--local"})):
        return RO, "git config only reads"
    if sub == "stash" and (pos and pos[0].value in ("list", "show")):
        return RO, "git stash list only reads"
    if sub == "stash" and pos and pos[0].value in ("drop", "clear"):
        return DES, f"git stash {pos[0].value} deletes stashed work"
    if sub == "worktree" and pos and pos[0].value == "list":
        return RO, "git worktree list only reads"
    if sub == "submodule" and pos and pos[0].value in ("status", "summary"):
        return RO, "git submodule status only reads"
    if sub == "clean" and ({"-f", "--force"} & flags) and not ({"-n", "--dry-run"} & flags):
        return DES, "git clean -f deletes untracked files"
    if sub == "clean":
        return RO if ({"-n", "--dry-run"} & flags) else MUT, "git clean -n only lists"
    if sub == "reset" and "--hard" in flags:
        return DES, "git reset --hard discards uncommitted work"
    if sub == "push" and ({"-f", "--force", "--mirror", "--delete", "-d", "--prune"} & flags or any(v.startswith("+") or v.startswith(":") for v in _vals(pos))):
        return DES, "git push --force/--delete rewrites or deletes remote history"
    if sub == "checkout" and ({"-f", "--force"} & flags or "--" in vals or "." in vals):
        return DES, "git checkout -f / -- discards uncommitted work"
    if sub == "restore" and not ({"--staged", "-S"} & flags and not {"--worktree", "-W"} & flags):
        return DES, "git restore discards uncommitted work"
    if sub == "filter-branch" or sub == "filter-repo":
        return DES, f"git {sub} rewrites history"
    return MUT, f"git {sub} changes the repository"


_CRITICAL_PACKAGES = {"openssh-server", "openssh", "ssh", "sudo", "systemd", "libc6", "glibc", "bash",
                      "coreutils", "apt", "dpkg", "rpm", "dnf", "yum", "linux-image-generic", "grub-pc",
                      "grub2", "grub-efi-amd64", "init", "util-linux", "login", "passwd", "base-files",
                      "python3", "openssl", "libssl3", "network-manager", "netplan.io", "ifupdown", "kernel"}


def _pkg_removal(prog: str, pkgs: Sequence[str]) -> _Result:
    for p in pkgs:
        name = p.split("=")[0].split(":")[0]
        if name in _CRITICAL_PACKAGES or name.startswith("linux-image") or name.startswith("kernel"):
            return DES, f"{prog} removing {name} can break the system or remote access"
    return MUT, f"{prog} removes packages"


def _apt(prog: str, args: list[Word]) -> _Result:
    flags, _, pos = _split_opts(args, "oqct", ("--option", "--config-file", "--target-release"))
    if prog == "apt-cache":
        return RO, "apt-cache only reads"
    if {"-s", "--simulate", "--dry-run", "--just-print", "--no-act", "--recon"} & flags:
        return RO, f"{prog} --simulate changes nothing"
    if not pos:
        return RO, f"{prog} shows help"
    sub = pos[0].value
    if sub in ("list", "search", "show", "policy", "depends", "rdepends", "madison", "showsrc", "changelog",
               "showpkg", "stats", "dump", "dumpavail", "unmet", "pkgnames", "help", "check", "moo",
               "showhold", "showmanual", "showauto", "info", "why", "why-not"):
        return RO, f"{prog} {sub} only reads"
    if sub in ("remove", "purge", "autoremove", "autopurge", "erase"):
        return _pkg_removal(f"{prog} {sub}", _vals(pos[1:]))
    return MUT, f"{prog} {sub} changes installed packages"


def _dnf(prog: str, args: list[Word]) -> _Result:
    flags, _, pos = _split_opts(args, "cdeRx", ("--config", "--exclude", "--setopt", "--releasever", "--enablerepo", "--disablerepo", "--repo"))
    if not pos:
        return RO, f"{prog} shows help"
    sub = pos[0].value
    if sub in ("list", "info", "search", "repolist", "check-update", "provides", "whatprovides", "deplist",
               "repoquery", "history", "help", "repoinfo", "updateinfo", "check", "version", "--version",
               "leaves", "alias", "module", "group") and (sub not in ("history", "module", "group") or len(pos) < 2 or pos[1].value in ("list", "info", "summary")):
        return RO, f"{prog} {sub} only reads"
    if sub in ("remove", "erase", "autoremove"):
        return _pkg_removal(f"{prog} {sub}", _vals(pos[1:]))
    return MUT, f"{prog} {sub} changes installed packages"


def _dpkg(prog: str, args: list[Word]) -> _Result:
    vals = _vals(args)
    ro = ("-l", "--list", "-L", "--listfiles", "-s", "--status", "-S", "--search", "-p", "--print-avail",
          "--get-selections", "-c", "--contents", "-I", "--info", "--print-architecture",
          "--print-foreign-architectures", "--compare-versions", "--version", "-V", "--verify", "-C",
          "--audit", "--help", "-f", "--field", "-W", "--show")
    if prog in ("dpkg-query", "dpkg-deb") and not any(v in ("-b", "--build", "-x", "-X", "--extract", "-R", "--raw-extract") for v in vals):
        return RO, f"{prog} only reads"
    if vals and vals[0].split("=")[0] in ro:
        return RO, f"{prog} {vals[0]} only reads"
    if vals and vals[0] in ("-r", "--remove", "-P", "--purge"):
        return _pkg_removal(f"{prog} {vals[0]}", vals[1:])
    return MUT, f"{prog} changes installed packages"


def _rpm(prog: str, args: list[Word]) -> _Result:
    vals = _vals(args)
    if vals and (re.fullmatch(r"-q\w*", vals[0]) or vals[0] in ("--query", "-V", "--verify", "--eval", "-E", "-K", "--checksig", "--version", "--querytags", "--showrc")):
        return RO, f"{prog} query only reads"
    if vals and re.fullmatch(r"-e\w*|--erase", vals[0]):
        return _pkg_removal(f"{prog} -e", [v for v in vals[1:] if not v.startswith("-")])
    return MUT, f"{prog} changes installed packages"


def _simple_sub(ro_subs: set[str], verb: str = "changes state", destructive: dict[str, str] | None = None, with_arg: str = "", long_with_arg: Sequence[str] = (), no_sub_ro: bool = True) -> Callable[[str, list[Word]], _Result]:
    def h(prog: str, args: list[Word]) -> _Result:
        flags, _, pos = _split_opts(args, with_arg, long_with_arg)
        if not pos:
            if no_sub_ro or {"--version", "-v", "-V", "--help", "-h"} & flags:
                return RO, f"{prog} only reads"
            return MUT, f"{prog} {verb}"
        sub = pos[0].value
        if destructive and sub in destructive:
            return DES, f"{prog} {sub} {destructive[sub]}"
        if sub in ro_subs:
            return RO, f"{prog} {sub} only reads"
        return MUT, f"{prog} {sub} {verb}"

    return h


def _pip(prog: str, args: list[Word]) -> _Result:
    return _simple_sub({"list", "show", "freeze", "check", "search", "index", "debug", "help", "inspect", "config-list"}, "changes installed packages")(prog, args)


def _npm(prog: str, args: list[Word]) -> _Result:
    return _simple_sub({"ls", "list", "view", "info", "show", "outdated", "root", "bin", "prefix", "doctor", "help", "search", "explain", "why", "query", "-v", "--version", "ll", "la", "fund"}, "changes packages or runs scripts")(prog, args)


def _nginx(prog: str, args: list[Word]) -> _Result:
    flags, values, _ = _split_opts(args, "scpeg")
    if {"-t", "-T", "-v", "-V", "-h", "-?"} & flags and "-s" not in values:
        return RO, f"{prog} -t only tests the configuration"
    if "-s" in values:
        return MUT, f"{prog} -s {values['-s']} signals the running server"
    return MUT, f"{prog} starts the server"


def _apachectl(prog: str, args: list[Word]) -> _Result:
    vals = _vals(args)
    if vals and vals[0] in ("configtest", "-t", "-S", "-M", "-v", "-V", "status", "fullstatus", "-l", "-L", "-D", "-h"):
        return RO, f"{prog} {vals[0]} only reads"
    return MUT, f"{prog} {' '.join(vals)} changes the web server"


def _kill(prog: str, args: list[Word]) -> _Result:
    vals = _vals(args)
    if not vals or vals[0] in ("-l", "-L", "--list", "--table"):
        return RO, "kill -l only lists signals"
    i = 0
    signal = ""
    if vals[0] in ("-s", "-n", "--signal") and len(vals) > 1:
        signal, i = vals[1], 2
    elif vals[0].startswith("-") and vals[0] != "--":
        signal, i = vals[0].lstrip("-"), 1  # the first dash word is the signal: `kill -1 123` is SIGHUP
    targets = [v for v in vals[i:] if v != "--"]
    if signal in ("0", "s0"):
        return RO, "kill -0 only checks that a process exists"
    if any(t == "1" or t.startswith("-") for t in targets):
        return DES, "kill of PID 1 or of a process group such as -1 (every process) takes the server down"
    if any(w.dynamic for w in args):
        return MUT, "kill signals processes chosen at run time"
    return MUT, f"kill signals process {' '.join(targets)}"


def _pkill(prog: str, args: list[Word]) -> _Result:
    flags, values, pos = _split_opts(args, "uUgGPstF", ("--signal", "--euid", "--uid", "--parent", "--session", "--terminal", "--pidfile"))
    names = _vals(pos)
    if any(n.strip("^$") in ("sshd", "ssh", "systemd", "init", "dbus-daemon", "dbus") for n in names):
        return DES, f"{prog} of {' '.join(names)} can take the server or remote access down"
    if values.get("-u") in ("root", "0") or values.get("--euid") in ("root", "0"):
        return DES, f"{prog} -u root kills system processes"
    return MUT, f"{prog} signals processes matching {' '.join(names)}"


def _killall(prog: str, args: list[Word]) -> _Result:
    vals = _vals(args)
    if prog == "killall" and vals and vals[0] in ("-l", "--list", "-V", "--version"):
        return RO, "killall -l only lists signals"
    return DES, f"{prog} kills every process {'named ' + ' '.join(v for v in vals if not v.startswith('-')) if vals else 'on the machine'}"


def _power(prog: str, args: list[Word]) -> _Result:
    vals = _vals(args)
    if prog == "shutdown" and "-c" in vals:
        return MUT, "shutdown -c cancels a pending shutdown"
    if vals and vals[0] in ("--help", "-h", "--version") and prog != "shutdown":
        return RO, f"{prog} --help"
    return DES, f"{prog} takes the whole server down"


def _init(prog: str, args: list[Word]) -> _Result:
    vals = _vals(args)
    if vals and vals[0] in ("0", "1", "6", "s", "S", "single", "emergency"):
        return DES, f"{prog} {vals[0]} halts, reboots or isolates the server"
    if vals and vals[0] in ("q", "Q", "u", "U"):
        return MUT, f"{prog} {vals[0]} reloads init"
    return MUT, f"{prog} changes the run level"


def _iptables(prog: str, args: list[Word]) -> _Result:
    vals = _vals(args)
    cmds: set[str] = set()
    policy_drop = False
    for i, v in enumerate(vals):
        if v.startswith("--"):
            name = v.split("=")[0]
            cmds.add({"--flush": "F", "--delete-chain": "X", "--policy": "P", "--zero": "Z", "--append": "A",
                      "--insert": "I", "--delete": "D", "--replace": "R", "--new-chain": "N", "--list": "L",
                      "--list-rules": "S", "--check": "C", "--rename-chain": "E"}.get(name, ""))
        elif v.startswith("-") and len(v) > 1 and not v[1:].isdigit():
            letters = v[1:]
            for ch in letters:
                if ch in "FXPZAIDRNLSCE":
                    cmds.add(ch)
                if ch in "tjmpsdio":  # options with a value: the rest of the cluster is the value
                    break
        if v in ("-P", "--policy") and i + 2 < len(vals) and vals[i + 2].upper() in ("DROP", "REJECT"):
            policy_drop = True
    cmds.discard("")
    if "F" in cmds or "X" in cmds:
        return DES, f"{prog} -F/-X flushes the firewall rules"
    if policy_drop:
        return DES, f"{prog} -P ... DROP can lock everyone out of the server"
    if cmds and cmds <= {"L", "S", "C"}:
        return RO, f"{prog} -L/-S only lists rules"
    if not cmds:
        return RO, f"{prog} without a command changes nothing"
    return MUT, f"{prog} changes firewall rules"


def _nft(prog: str, args: list[Word]) -> _Result:
    _, values, pos = _split_opts(args, "fIo", ("--file", "--includepath"))
    vals = [v.lower() for v in _vals(pos)]
    if "-f" in values or "--file" in values:
        return MUT, "nft -f loads a ruleset"
    if vals and vals[0] in ("list", "describe", "monitor", "-v", "--version"):
        return RO, "nft list only reads"
    if vals and vals[0] in ("flush", "delete", "destroy") and len(vals) > 1 and vals[1] in ("ruleset", "table", "chain"):
        return DES, f"nft {' '.join(vals[:2])} removes firewall rules"
    if not vals:
        return MUT, "nft opens an interactive shell"
    return MUT, f"nft {vals[0]} changes firewall rules"


def _ufw(prog: str, args: list[Word]) -> _Result:
    _, _, pos = _split_opts(args)
    vals = _vals(pos)
    if not vals or vals[0] in ("status", "version", "show") or vals[:2] in (["app", "list"], ["app", "info"]):
        return RO, f"ufw {' '.join(vals[:2])} only reads".replace("  ", " ")
    if vals[0] in ("disable", "reset"):
        return DES, f"ufw {vals[0]} removes the firewall"
    if vals[0] == "default" and len(vals) > 1 and vals[1] in ("deny", "reject") and (len(vals) < 3 or vals[2] != "routed"):
        return MUT, "ufw default deny changes the default policy"
    return MUT, f"ufw {vals[0]} changes firewall rules"


def _firewall_cmd(prog: str, args: list[Word]) -> _Result:
    vals = _vals(args)
    if any(v.startswith("--panic-on") for v in vals):
        return DES, "firewall-cmd --panic-on drops all traffic"
    if vals and all(re.match(r"--(list|get|query|state|zone|permanent|info|version|help)", v) for v in vals):
        return RO, "firewall-cmd query only reads"
    return MUT, "firewall-cmd changes firewall rules"


def _crontab(prog: str, args: list[Word]) -> _Result:
    flags, _, pos = _split_opts(args, "u")
    if "-r" in flags:
        return DES, "crontab -r deletes the whole crontab"
    if "-l" in flags:
        return RO, "crontab -l only lists"
    return MUT, "crontab replaces or edits the crontab"


def _mount(prog: str, args: list[Word]) -> _Result:
    flags, _, pos = _split_opts(args, "tOoLU")
    if not pos and (not ({"-a", "--all"} & flags) or {"-l", "-V", "--version", "-h", "--help", "--show"} & flags):
        return RO, f"{prog} only lists"
    return MUT, f"{prog} changes what is mounted"


def _sysctl(prog: str, args: list[Word]) -> _Result:
    flags, _, pos = _split_opts(args, "p", ("--load",))
    if {"-w", "--write", "-p", "--load", "--system"} & flags or any("=" in w.value for w in pos):
        return MUT, "sysctl changes kernel settings"
    return RO, "sysctl only reads"


def _hostname(prog: str, args: list[Word]) -> _Result:
    flags, _, pos = _split_opts(args, "F", ("--file",))
    if pos or {"-F", "--file", "-b", "--boot"} & flags:
        return MUT, "hostname sets the host name"
    return RO, "hostname only reads"


def _date(prog: str, args: list[Word]) -> _Result:
    flags, values, pos = _split_opts(args, "dfrsIR", ("--date", "--file", "--reference", "--set"))
    if "-s" in values or "--set" in values or any(re.fullmatch(r"\d{8,12}(\.\d\d)?", w.value) for w in pos):
        return MUT, "date sets the system clock"
    return RO, "date only reads"


def _ctl_status(ro: set[str]) -> Callable[[str, list[Word]], _Result]:
    return _simple_sub(ro, "changes system settings")


def _sort(prog: str, args: list[Word]) -> _Result:
    _, values, _ = _split_opts(args, "oktST", ("--output", "--key", "--field-separator", "--temporary-directory", "--buffer-size"))
    out = values.get("-o") or values.get("--output")
    if out:
        return _write_target_risk(Word(out, prefix=out), "sort -o")
    return RO, "sort only prints"


def _second_positional_is_output(prog: str, args: list[Word]) -> _Result:
    _, _, pos = _split_opts(args, "fsnwcl", ("--skip-fields", "--skip-chars", "--check-chars"))
    if len(pos) >= 2:
        return _write_target_risk(pos[1], f"{prog} output")
    return RO, f"{prog} only prints"


def _tar(prog: str, args: list[Word]) -> _Result:
    vals = _vals(args)
    first = vals[0] if vals else ""
    letters = first if first and not first.startswith("-") else "".join(v[1:] for v in vals if re.fullmatch(r"-[a-zA-Z]+", v))
    longs = {v.split("=")[0] for v in vals if v.startswith("--")}
    if "t" in letters or "--list" in longs or "--diff" in longs or "d" in letters and "c" not in letters and "x" not in letters:
        return RO, "tar -t only lists"
    if "--delete" in longs:
        return MUT, "tar --delete changes an archive"
    if "x" in letters or "--extract" in longs or "--get" in longs:
        for i, v in enumerate(vals):
            if v in ("-C", "--directory") and i + 1 < len(vals) and _norm_path(vals[i + 1]) == "/":
                return DES, "tar -x into / can overwrite system files"
        return MUT, "tar -x writes files"
    return MUT, "tar writes an archive"


def _gzip(prog: str, args: list[Word]) -> _Result:
    flags, _, _ = _split_opts(args, "S", ("--suffix",))
    if {"-c", "--stdout", "-l", "--list", "-t", "--test", "-h", "--help", "-V", "--version"} & flags:
        return RO, f"{prog} -c/-l/-t only prints"
    return MUT, f"{prog} replaces files with (de)compressed ones"


def _unzip(prog: str, args: list[Word]) -> _Result:
    flags, _, _ = _split_opts(args, "d", ())
    if {"-l", "-t", "-v", "-Z", "-p", "-c", "-z"} & flags:
        return RO, "unzip -l/-t only lists"
    return MUT, "unzip writes files"


def _xxd(prog: str, args: list[Word]) -> _Result:
    _, _, pos = _split_opts(args, "cglosn", ())
    if len(pos) >= 2:
        return _write_target_risk(pos[1], "xxd output")
    return RO, "xxd only prints"


def _ip(prog: str, args: list[Word]) -> _Result:
    rest, _, _ = _skip_options(args, "fbnN", ("-family", "-batch", "-netns"))
    if not rest:
        return RO, "ip shows help"
    obj = rest[0].value
    vals = _vals(rest[1:])
    action = vals[0] if vals else "show"
    if action in ("show", "list", "ls", "lst", "get", "sh", "s", "l", "help") or (obj in ("monitor", "mon")):
        return RO, f"ip {obj} {action} only reads"
    if not vals or vals[0].startswith("-") or vals[0] in ("dev", "to", "table", "scope"):
        return RO, f"ip {obj} only reads"
    if obj in ("link", "l", "li") and action == "set" and "down" in vals:
        return DES, "ip link set ... down can cut off remote access"
    if obj in ("addr", "a", "address", "route", "r", "ro") and action in ("flush", "f"):
        return DES, f"ip {obj} flush can cut off remote access"
    return MUT, f"ip {obj} {action} changes network configuration"


def _ifconfig(prog: str, args: list[Word]) -> _Result:
    vals = _vals(args)
    if len(vals) <= 1 or vals in (["-a"], ["-s"]):
        return RO, "ifconfig only reads"
    if "down" in vals:
        return DES, "ifconfig ... down can cut off remote access"
    return MUT, "ifconfig changes network configuration"


def _ifdown(prog: str, args: list[Word]) -> _Result:
    return DES, f"{prog} takes a network interface down and can cut off remote access"


def _user_del(prog: str, args: list[Word]) -> _Result:
    return DES, f"{prog} deletes an account (and possibly its files)"


def _sql(sql: str) -> _Result:
    text = re.sub(r"--[^\n]*|/\*.*?\*/", " ", sql, flags=re.S)
    text = re.sub(r"'(?:[^']|'')*'", "''", text)
    worst: _Result = (RO, "")
    for stmt in re.split(r";", text):
        s = stmt.strip()
        if not s:
            continue
        if s.startswith("\\"):
            meta = s.split()[0]
            if meta in ("\\!",):
                return MUT, "the SQL runs a shell command"
            if meta in ("\\copy", "\\i", "\\ir", "\\o", "\\w", "\\g", "\\gx", "\\lo_import", "\\lo_unlink", "\\lo_export"):
                r: _Result = (MUT, f"the psql command {meta} reads or writes files")
            else:
                r = (RO, "")
        else:
            up = s.upper()
            words = re.findall(r"[A-Z_]+", up)
            first = words[0] if words else ""
            if re.search(r"\bDROP\s+(DATABASE|TABLE|SCHEMA|USER|ROLE|OWNED|INDEX|VIEW|FUNCTION|COLUMN|EXTENSION|TABLESPACE|\w+)", up):
                r = (DES, "the SQL drops " + re.search(r"\bDROP\s+(\w+)", up).group(1).lower() + " objects")
            elif re.search(r"\bTRUNCATE\b", up) or first == "FLUSHALL":
                r = (DES, "the SQL truncates a table")
            elif first in ("DELETE", "UPDATE") and " WHERE " not in f" {up} ":
                r = (DES, f"the SQL runs {first} without WHERE on a whole table")
            elif first in ("SELECT", "SHOW", "EXPLAIN", "DESCRIBE", "DESC", "VALUES", "TABLE", "WITH", "USE",
                           "SET", "BEGIN", "COMMIT", "ROLLBACK", "START", "HELP", "STATUS", "\\"):
                if re.search(r"\b(INSERT|UPDATE|DELETE|ALTER|CREATE|GRANT|REVOKE|INTO|COPY|MERGE|REPLACE|CALL|"
                             r"PG_TERMINATE_BACKEND|PG_CANCEL_BACKEND|PG_DROP_\w+|LO_UNLINK|SET_CONFIG|NEXTVAL|"
                             r"SETVAL|PG_RELOAD_CONF|PG_ROTATE_LOGFILE|PG_PROMOTE|DBLINK_EXEC)\b", up) or (
                    first == "EXPLAIN" and "ANALYZE" in words and re.search(r"\b(INSERT|UPDATE|DELETE)\b", up)
                ):
                    r = (MUT, "the SQL changes data")
                else:
                    r = (RO, "")
            else:
                r = (MUT, f"the SQL statement {first or s[:20]} changes the database")
        if r[0] > worst[0]:
            worst = r
    return worst


def _psql(prog: str, args: list[Word]) -> _Result:
    vals = _vals(args)
    sqls: list[str] = []
    file_input = False
    for i, v in enumerate(vals):
        if v in ("-c", "--command") and i + 1 < len(vals):
            sqls.append(vals[i + 1])
        elif v.startswith("--command="):
            sqls.append(v.split("=", 1)[1])
        elif v.startswith("-c") and len(v) > 2 and not v.startswith("--"):
            sqls.append(v[2:])
        elif v in ("-f", "--file") or v.startswith("--file="):
            file_input = True
        elif v in ("-l", "--list", "-V", "--version", "--help"):
            return RO, f"{prog} {v} only reads"
    if sqls:
        worst: _Result = (RO, "")
        for sql in sqls:
            r = _sql(sql)
            if r[0] > worst[0] or not worst[1]:
                worst = r if r[0] >= worst[0] else worst
        return worst[0], worst[1] or f"{prog} runs a read-only query"
    if file_input:
        return MUT, f"{prog} -f runs an SQL file whose effect is unknown"
    return MUT, f"{prog} runs SQL from its input, whose effect is unknown"


def _mysql(prog: str, args: list[Word]) -> _Result:
    vals = _vals(args)
    for i, v in enumerate(vals):
        sql = None
        if v in ("-e", "--execute") and i + 1 < len(vals):
            sql = vals[i + 1]
        elif v.startswith("--execute="):
            sql = v.split("=", 1)[1]
        elif v.startswith("-e") and len(v) > 2:
            sql = v[2:]
        if sql is not None:
            r = _sql(sql)
            return r[0], r[1] or f"{prog} runs a read-only query"
        if v in ("-V", "--version", "--help"):
            return RO, f"{prog} --version"
    return MUT, f"{prog} runs SQL from its input, whose effect is unknown"


def _mysqladmin(prog: str, args: list[Word]) -> _Result:
    _, _, pos = _split_opts(args, "uhPpSOc", ("--user", "--host", "--port", "--socket"))
    vals = [v.lower() for v in _vals(pos)]
    if any(v == "drop" for v in vals):
        return DES, f"{prog} drop deletes a database"
    if vals and all(v in ("status", "ping", "processlist", "variables", "version", "extended-status", "proc") for v in vals):
        return RO, f"{prog} {' '.join(vals)} only reads"
    if any(v == "shutdown" for v in vals):
        return MUT, f"{prog} shutdown stops the database server"
    return MUT, f"{prog} changes the database server"


def _sqlite(prog: str, args: list[Word]) -> _Result:
    _, _, pos = _split_opts(args, "", ("-cmd", "-separator", "-newline", "-nullvalue"))
    if len(pos) >= 2:
        sql = " ".join(_vals(pos[1:]))
        if sql.strip().startswith("."):
            if re.match(r"\.(tables|schema|indexes|indices|dump|show|databases|dbinfo|help|mode|headers)\b", sql.strip()):
                return RO, f"{prog} {sql.split()[0]} only reads"
            return MUT, f"{prog} dot-command {sql.split()[0]} may write"
        r = _sql(sql)
        return r[0], r[1] or f"{prog} runs a read-only query"
    return MUT, f"{prog} runs SQL from its input, whose effect is unknown"


_REDIS_RO = {"get", "mget", "keys", "scan", "info", "ping", "exists", "ttl", "pttl", "type", "strlen",
             "hget", "hgetall", "hkeys", "hvals", "hlen", "hexists", "lrange", "llen", "lindex", "smembers",
             "scard", "sismember", "zrange", "zrangebyscore", "zcard", "zscore", "dbsize", "time",
             "client", "memory", "slowlog", "config", "monitor", "echo", "lastsave", "role", "xlen",
             "xrange", "xinfo", "object", "dump", "--version", "-v", "randomkey", "latency"}


def _redis_cli(prog: str, args: list[Word]) -> _Result:
    flags, _, pos = _split_opts(args, "hpsanuc", ("--user", "--pass", "--tls", "--cacert", "--cert", "--key", "--sni", "--rdb", "--pipe-timeout"))
    if not pos:
        if flags & {"--scan", "--bigkeys", "--memkeys", "--hotkeys", "--stat", "--latency", "--latency-history", "--version", "-v"}:
            return RO, f"{prog} {sorted(flags)[0]} only reads"
        return MUT, f"{prog} runs commands from its input"
    if "--scan" in flags:
        return RO, f"{prog} --scan only reads"
    cmd = pos[0].value.lower()
    if cmd in ("flushall", "flushdb", "shutdown", "debug"):
        return DES, f"{prog} {cmd.upper()} deletes all keys or stops the server"
    if cmd == "config" and len(pos) > 1 and pos[1].value.lower() != "get":
        return MUT, f"{prog} CONFIG {pos[1].value.upper()} changes the server"
    if cmd in ("client", "slowlog", "memory") and len(pos) > 1 and pos[1].value.lower() in ("kill", "reset", "purge", "pause", "no-evict", "setname"):
        return MUT, f"{prog} {cmd.upper()} {pos[1].value.upper()} changes the server"
    if cmd in _REDIS_RO:
        return RO, f"{prog} {cmd.upper()} only reads"
    return MUT, f"{prog} {cmd.upper()} changes data"


def _mongo(prog: str, args: list[Word]) -> _Result:
    vals = _vals(args)
    for i, v in enumerate(vals):
        if v == "--eval" and i + 1 < len(vals):
            code = vals[i + 1]
            if re.search(r"dropDatabase|\.drop\(|deleteMany\(\s*\{\s*\}|remove\(\s*\{\s*\}", code):
                return DES, f"{prog} --eval drops or empties a collection or database"
            if re.search(r"\.(find|findOne|count|countDocuments|aggregate|stats|getCollectionNames|getIndexes)\(|\b(show|db\.version|db\.stats|rs\.status|serverStatus)\b", code) and not re.search(
                r"\.(insert\w*|update\w*|delete\w*|remove|replace\w*|create\w*|rename\w*|\$out|\$merge)", code
            ):
                return RO, f"{prog} --eval runs a read-only query"
            return MUT, f"{prog} --eval runs code that may change data"
    if "--version" in vals:
        return RO, f"{prog} --version"
    return MUT, f"{prog} opens a shell that may change data"


def _dev_tool(prog: str, args: list[Word]) -> _Result:
    return DES, f"{prog} destroys data on a device or volume"


def _rsync(prog: str, args: list[Word]) -> _Result:
    flags, _, pos = _split_opts(args, "eBfT", ("--rsh", "--exclude", "--include", "--filter", "--backup-dir", "--chmod", "--chown"))
    delete = {f for f in flags if f.startswith("--delete") or f == "--remove-source-files"}
    if {"-n", "--dry-run", "--list-only"} & flags:
        return RO, "rsync --dry-run changes nothing"
    dest = pos[-1].value if len(pos) > 1 else ""
    if delete and (is_system_path(dest.split(":")[-1]) or not dest):
        return DES, f"rsync {sorted(delete)[0]} into {dest or 'a system path'} deletes files there"
    if dest and is_critical_file(dest):
        return DES, f"rsync onto {dest} overwrites a critical system file"
    if delete:
        return MUT, f"rsync {sorted(delete)[0]} deletes files missing from the source"
    return MUT, f"rsync writes {dest or 'files'}"


def _shred(prog: str, args: list[Word]) -> _Result:
    return DES, f"{prog} irrecoverably destroys file contents"


def _usermod(prog: str, args: list[Word]) -> _Result:
    return MUT, f"{prog} changes accounts"


def _ssh_keygen(prog: str, args: list[Word]) -> _Result:
    flags, _, _ = _split_opts(args, "fEFtbCNRrw", ())
    if {"-l", "-L", "-y", "-F", "-H"} & flags and not ({"-R"} & flags):
        return RO, "ssh-keygen -l only reads"
    return MUT, "ssh-keygen writes keys or known_hosts"


def _certbot(prog: str, args: list[Word]) -> _Result:
    return _simple_sub({"certificates", "plugins", "show_account"}, "changes certificates", no_sub_ro=False)(prog, args)


def _swapon(prog: str, args: list[Word]) -> _Result:
    flags, _, pos = _split_opts(args)
    if (not pos and not ({"-a", "--all"} & flags)) or {"-s", "--summary", "--show"} & flags:
        return RO, f"{prog} only lists"
    return MUT, f"{prog} changes swap"


def _logrotate(prog: str, args: list[Word]) -> _Result:
    flags, _, _ = _split_opts(args, "sl", ("--state", "--log"))
    if {"-d", "--debug"} & flags:
        return RO, "logrotate -d only simulates"
    return MUT, "logrotate rotates logs"


def _fail2ban(prog: str, args: list[Word]) -> _Result:
    vals = _vals(args)
    if not vals or vals[0] in ("status", "ping", "version", "-V", "--version", "-h", "--help", "get", "banned"):
        return RO, f"{prog} {' '.join(vals[:1])} only reads"
    return MUT, f"{prog} changes jails or bans"


def _kubectl(prog: str, args: list[Word]) -> _Result:
    flags, _, pos = _split_opts(args, "nclos", ("--namespace", "--context", "--selector", "--output", "--kubeconfig", "--cluster", "--user", "--container", "--since", "--tail"))
    vals = _vals(pos)
    sub = vals[0] if vals else ""
    if sub in ("get", "describe", "logs", "top", "explain", "version", "api-resources", "api-versions", "cluster-info", "config", "events", "diff", "auth") and not (sub == "config" and len(vals) > 1 and vals[1].startswith(("set", "use", "delete", "rename"))):
        return RO, f"kubectl {sub} only reads"
    if sub == "delete" and (any(v in ("namespace", "ns", "pv", "pvc", "persistentvolume", "persistentvolumeclaim", "node", "nodes") for v in vals[1:]) or "--all" in flags):
        return DES, "kubectl delete of namespaces, volumes, nodes or --all deletes data"
    if not sub:
        return RO, "kubectl shows help"
    return MUT, f"kubectl {sub} changes the cluster"


_HANDLERS: dict[str, Callable[[str, list[Word]], _Result]] = {
    "rm": _rm,
    "unlink": _unlink,
    "rmdir": lambda p, a: _unlink(p, a) if any(_unknown_path(w) or is_system_path(w.value) for w in a) else (MUT, f"rmdir removes {' '.join(_vals(a))}"),
    "shred": _shred, "wipe": _shred, "srm": _shred, "wipefs": _shred, "blkdiscard": _shred,
    "dd": _dd,
    "fdisk": _partition_tool, "sfdisk": _partition_tool, "cfdisk": _partition_tool, "gdisk": _partition_tool,
    "sgdisk": _partition_tool, "parted": _partition_tool, "partprobe": lambda p, a: (MUT, "partprobe rereads partition tables"),
    "truncate": _truncate, "fallocate": _truncate,
    "chmod": _chmod_like, "chown": _chmod_like, "chgrp": _chmod_like, "setfacl": _chmod_like, "chattr": _chmod_like,
    "mv": _mv, "cp": _cp, "install": _cp, "ln": _ln,
    "tee": _tee,
    "sed": _sed, "gsed": _sed,
    "awk": _awk, "gawk": _awk, "mawk": _awk, "nawk": _awk,
    "curl": _curl, "wget": _wget,
    "systemctl": _systemctl, "service": _service,
    "journalctl": _journalctl, "dmesg": _dmesg,
    "openssl": _openssl,
    "docker": _docker, "podman": _docker, "nerdctl": _docker,
    "docker-compose": lambda p, a: _docker("docker", [Word("compose"), *a]),
    "git": _git,
    "apt": _apt, "apt-get": _apt, "aptitude": _apt, "apt-cache": _apt,
    "dnf": _dnf, "yum": _dnf, "microdnf": _dnf,
    "zypper": _simple_sub({"search", "se", "info", "if", "list-updates", "lu", "repos", "lr", "packages", "pa", "patches", "products", "pd", "what-provides", "wp"}, "changes installed packages"),
    "apk": _simple_sub({"info", "search", "list", "policy", "stats", "version", "dot", "audit"}, "changes installed packages"),
    "pacman": lambda p, a: (RO, "pacman query only reads") if a and re.fullmatch(r"-(Q|Ss|Si|Sl|Sg|F)\w*", a[0].value) else (MUT, "pacman changes installed packages"),
    "snap": _simple_sub({"list", "info", "find", "version", "services", "changes", "connections", "interfaces", "warnings", "get", "logs", "known", "aliases"}, "changes snaps"),
    "flatpak": _simple_sub({"list", "info", "search", "remotes", "history", "ps", "--version"}, "changes flatpaks"),
    "dpkg": _dpkg, "dpkg-query": _dpkg, "dpkg-deb": _dpkg,
    "rpm": _rpm,
    "pip": _pip, "pip3": _pip, "pipx": _simple_sub({"list", "environment", "--version"}, "changes installed packages"),
    "npm": _npm, "pnpm": _npm, "yarn": _simple_sub({"list", "info", "why", "outdated", "--version", "-v", "versions", "config"}, "changes packages or runs scripts"),
    "gem": _simple_sub({"list", "search", "info", "query", "specification", "contents", "environment", "which", "outdated", "--version", "-v", "help"}, "changes installed gems"),
    "composer": _simple_sub({"show", "info", "search", "depends", "why", "why-not", "outdated", "licenses", "validate", "diagnose", "about", "--version", "-V", "check-platform-reqs", "audit", "config"}, "changes packages or runs scripts"),
    "nginx": _nginx, "openresty": _nginx,
    "apachectl": _apachectl, "apache2ctl": _apachectl, "httpd": _apachectl,
    "kill": _kill, "pkill": _pkill, "killall": _killall, "killall5": _killall,
    "shutdown": _power, "reboot": _power, "halt": _power, "poweroff": _power, "kexec": _power,
    "init": _init, "telinit": _init,
    "iptables": _iptables, "ip6tables": _iptables, "iptables-legacy": _iptables, "iptables-nft": _iptables,
    "ip6tables-legacy": _iptables, "ip6tables-nft": _iptables, "ebtables": _iptables, "arptables": _iptables,
    "iptables-save": lambda p, a: (RO, f"{p} only prints the rules") if not any(w.value in ("-f", "--file") for w in a) else (MUT, f"{p} -f writes a file"),
    "ip6tables-save": lambda p, a: (RO, f"{p} only prints the rules"),
    "nft": _nft, "ufw": _ufw, "firewall-cmd": _firewall_cmd,
    "userdel": _user_del, "deluser": _user_del, "groupdel": _user_del, "delgroup": _user_del,
    "useradd": _usermod, "adduser": _usermod, "usermod": _usermod, "passwd": lambda p, a: (RO, "passwd -S only reads") if any(w.value in ("-S", "--status") for w in a) else (MUT, "passwd changes a password or account state"),
    "chpasswd": _usermod, "groupadd": _usermod, "gpasswd": _usermod, "chage": lambda p, a: (RO, "chage -l only reads") if any(w.value in ("-l", "--list") for w in a) else (MUT, "chage changes password aging"),
    "crontab": _crontab,
    "mount": _mount,
    "umount": lambda p, a: (MUT, "umount detaches a filesystem"),
    "swapon": _swapon, "swapoff": lambda p, a: (MUT, "swapoff disables swap"),
    "sysctl": _sysctl,
    "hostname": _hostname,
    "hostnamectl": _ctl_status({"status", "--version", "--help"}),
    "timedatectl": _ctl_status({"status", "show", "list-timezones", "timesync-status", "show-timesync", "--version", "--help"}),
    "localectl": _ctl_status({"status", "list-locales", "list-keymaps", "list-x11-keymap-models", "--version"}),
    "loginctl": _ctl_status({"list-sessions", "list-users", "list-seats", "show-session", "show-user", "show-seat", "session-status", "user-status", "seat-status", "--version"}),
    "resolvectl": _ctl_status({"status", "query", "statistics", "dns", "domain", "llmnr", "mdns", "dnssec", "dnsovertls", "nta", "service", "openpgp", "tlsa", "--version"}),
    "networkctl": _ctl_status({"list", "status", "lldp", "label", "--version"}),
    "nmcli": lambda p, a: (RO, "nmcli only reads") if not any(w.value in ("modify", "mod", "m", "up", "down", "delete", "del", "add", "connect", "disconnect", "set", "reload", "load", "import", "off", "on", "edit") for w in a) else (DES if any(w.value in ("down", "disconnect", "off", "delete", "del") for w in a) else MUT, "nmcli changes network connections"),
    "netplan": lambda p, a: (RO, "netplan get only reads") if a and a[0].value in ("get", "info", "status", "--help") else (MUT, "netplan changes network configuration"),
    "date": _date,
    "sort": _sort, "uniq": _second_positional_is_output,
    "xxd": _xxd,
    "tar": _tar, "bsdtar": _tar,
    "gzip": _gzip, "gunzip": _gzip, "bzip2": _gzip, "bunzip2": _gzip, "xz": _gzip, "unxz": _gzip, "zstd": _gzip, "unzstd": _gzip,
    "unzip": _unzip,
    "ip": _ip, "ifconfig": _ifconfig, "ifdown": _ifdown, "ifup": lambda p, a: (MUT, "ifup brings an interface up"),
    "psql": _psql, "mysql": _mysql, "mariadb": _mysql, "mysqladmin": _mysqladmin, "mariadb-admin": _mysqladmin,
    "sqlite3": _sqlite, "sqlite": _sqlite, "redis-cli": _redis_cli, "valkey-cli": _redis_cli,
    "mongo": _mongo, "mongosh": _mongo,
    "dropdb": lambda p, a: (DES, "dropdb deletes a database"),
    "dropuser": lambda p, a: (DES, "dropuser deletes a database role"),
    "pg_dropcluster": lambda p, a: (DES, "pg_dropcluster deletes a database cluster"),
    "pg_lsclusters": lambda p, a: (RO, "pg_lsclusters only lists"),
    "pg_isready": lambda p, a: (RO, "pg_isready only checks"),
    "pg_dump": lambda p, a: (MUT, "pg_dump -f writes a file") if any(w.value.startswith(("-f", "--file")) for w in a) else (RO, "pg_dump only prints a dump"),
    "mysqldump": lambda p, a: (MUT, "mysqldump writes a file") if any(w.value.startswith(("-r", "--result-file")) for w in a) else (RO, "mysqldump only prints a dump"),
    "lvremove": _dev_tool, "vgremove": _dev_tool, "pvremove": _dev_tool, "zpool": lambda p, a: (DES, "zpool destroy deletes a pool") if a and a[0].value in ("destroy", "labelclear") else ((RO, "zpool status only reads") if not a or a[0].value in ("status", "list", "iostat", "history", "get", "events") else (MUT, "zpool changes pools")),
    "zfs": lambda p, a: (DES, "zfs destroy deletes datasets") if a and a[0].value in ("destroy", "rollback") else ((RO, "zfs list only reads") if not a or a[0].value in ("list", "get", "diff", "holds") else (MUT, "zfs changes datasets")),
    "cryptsetup": lambda p, a: (DES, "cryptsetup erase destroys encryption keys") if any(w.value in ("erase", "luksErase", "luksFormat", "luksKillSlot", "luksRemoveKey") for w in a) else ((RO, "cryptsetup status only reads") if a and a[0].value in ("status", "luksDump", "isLuks", "--version") else (MUT, "cryptsetup changes encrypted volumes")),
    "mdadm": lambda p, a: (DES, "mdadm --zero-superblock/--create destroys array data") if any(w.value in ("--zero-superblock", "--create", "-C", "--fail", "-f", "--remove", "-r", "--stop", "-S") for w in a) else ((RO, "mdadm --detail only reads") if any(w.value in ("--detail", "-D", "--examine", "-E", "--query", "-Q", "--version", "-V") for w in a) else (MUT, "mdadm changes arrays")),
    "btrfs": lambda p, a: (DES, "btrfs subvolume delete deletes data") if len(a) > 1 and a[1].value in ("delete", "del") else ((RO, "btrfs show only reads") if len(a) > 1 and a[1].value in ("show", "list", "df", "usage", "stats", "status") else (MUT, "btrfs changes filesystems")),
    "rsync": _rsync,
    "ssh-keygen": _ssh_keygen,
    "certbot": _certbot,
    "logrotate": _logrotate,
    "fail2ban-client": _fail2ban,
    "kubectl": _kubectl,
    "visudo": lambda p, a: (RO, "visudo -c only checks") if any(w.value in ("-c", "--check") for w in a) else (MUT, "visudo edits sudoers"),
    "source": lambda p, a: (MUT, f"source runs {a[0].value if a else 'a file'} in the current shell"),
    ".": lambda p, a: (MUT, f". runs {a[0].value if a else 'a file'} in the current shell"),
    "hdparm": lambda p, a: (DES, "hdparm security-erase/write destroys data") if any(w.value.startswith(("--security-erase", "--trim-sector", "--write-sector", "--fwdownload")) for w in a) else ((RO, "hdparm -I only reads") if all(w.value in ("-I", "-i", "-t", "-T", "-g", "-C") or w.value.startswith("/dev/") for w in a) else (MUT, "hdparm changes drive settings")),
    "smartctl": lambda p, a: (MUT, "smartctl -t starts a self test") if any(w.value.startswith(("-t", "--test", "-s", "--smart", "-o", "-S")) for w in a) else (RO, "smartctl only reads"),
    "top": lambda p, a: (RO, "top only reads"),
    "modprobe": lambda p, a: (MUT, "modprobe loads or unloads kernel modules"),
    "vi": lambda p, a: (MUT, f"{p} edits files"), "vim": lambda p, a: (MUT, f"{p} edits files"),
    "nano": lambda p, a: (MUT, f"{p} edits files"), "emacs": lambda p, a: (MUT, f"{p} edits files"),
    "at": lambda p, a: (RO, "at -l only lists") if any(w.value in ("-l",) for w in a) else (MUT, "at schedules commands"),
    "atq": lambda p, a: (RO, "atq only lists"),
    "pm2": _simple_sub({"list", "ls", "l", "status", "jlist", "prettylist", "show", "info", "describe", "logs", "monit", "env", "--version", "-v", "report", "ping"}, "changes managed processes"),
    "supervisorctl": _simple_sub({"status", "avail", "tail", "pid", "version", "help", "maintail"}, "changes supervised programs"),
    "helm": _simple_sub({"list", "ls", "status", "get", "history", "show", "search", "version", "env", "template", "lint", "verify", "repo-list", "dependency"}, "changes releases"),
    "virsh": lambda p, a: (DES, f"virsh {a[0].value} powers off or deletes a virtual machine") if a and a[0].value in ("destroy", "undefine", "vol-delete", "pool-delete", "vol-wipe") else ((RO, "virsh query only reads") if not a or re.fullmatch(r"list|dom\w*info|domstate|dumpxml|net-list|net-info|pool-list|pool-info|vol-list|vol-info|nodeinfo|version|capabilities|hostname|uri|dominfo|domblklist|domiflist|snapshot-list", a[0].value) else (MUT, f"virsh {a[0].value} changes virtual machines")),
    "lxc": _simple_sub({"list", "ls", "info", "version", "config-show", "image-list", "remote-list", "storage-list", "network-list", "profile-list", "operation-list"}, "changes containers", {"delete": "deletes a container and its data"}),
    "conntrack": lambda p, a: (MUT, "conntrack -D/-F deletes connection tracking entries") if any(w.value in ("-D", "--delete", "-F", "--flush", "-I", "-U", "--create", "--update") for w in a) else (RO, "conntrack listing only reads"),
    "yq": lambda p, a: (MUT, "yq -i edits files in place") if any(re.fullmatch(r"-\w*i\w*|--inplace", w.value) for w in a) else (RO, "yq only prints"),
    "sshd": lambda p, a: (RO, "sshd -t/-T only tests the configuration") if a and all(w.value in ("-t", "-T", "-V", "-G") or w.value.startswith(("-f", "-C")) or not w.value.startswith("-") for w in a) and any(w.value in ("-t", "-T", "-V", "-G") for w in a) else (MUT, "sshd starts an SSH server"),
    "haproxy": lambda p, a: (RO, "haproxy -c only checks the configuration") if any(w.value in ("-c", "-v", "-vv", "-V") for w in a) else (MUT, "haproxy starts a proxy"),
    "postfix": _simple_sub({"check", "status"}, "changes the mail system", no_sub_ro=False),
    "postqueue": lambda p, a: (RO, "postqueue -p only lists the queue") if any(w.value in ("-p", "-j") for w in a) else (MUT, "postqueue -f/-i flushes the mail queue"),
    "exim": lambda p, a: (RO, "exim -bp only lists") if a and all(w.value in ("-bp", "-bpc", "-bV", "-bP", "-bt") for w in a[:1]) else (MUT, "exim changes the mail system"),
    "dovecot": lambda p, a: (RO, "dovecot -n only prints the configuration") if a and a[0].value in ("-n", "-a", "--version", "--build-options") else (MUT, "dovecot starts or controls the server"),
    "nc": lambda p, a: (RO, "nc -z only probes ports") if any(re.fullmatch(r"-\w*z\w*", w.value) for w in a) else (MUT, "nc sends data or listens on a port"),
}


# Every classifier rule in one place for docs/tests that want to enumerate them.
KNOWN_PROGRAMS = frozenset(_READ_ONLY | set(_HANDLERS) | set(_WRAPPERS))


def matches_glob(pattern: str, text: str) -> bool:
    return fnmatch.fnmatchcase(text, pattern)
