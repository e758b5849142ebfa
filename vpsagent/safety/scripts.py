"""Judging code that lives in files: scripts that are run, and files that will be run.

`ScriptSource` is how the classifier reads a script: `content_of(path)` returns its bytes,
or None when it cannot be read. The agent layer passes the files written in this
conversation first and falls back to reading the server over the same connection
(`ChainedSource(WrittenFiles(...), ReaderSource(read))`). Without a source, running a
script is `unknown`.

`classify_write(path, content, mode)` judges the write_file tool: a file that will be
executed (a shebang, an executable mode, or a persistence path: cron, systemd units, shell
profiles, init scripts, rc.local…) is judged by what it holds.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from vpsagent.safety import paths
from vpsagent.safety.model import CHANGE, DES, RO, UNKNOWN, Classification, Finding, Part
from vpsagent.safety.parse import Word

if TYPE_CHECKING:
    from vpsagent.safety.analyze import Analyzer, Feed

MAX_SCRIPT_BYTES = 256 * 1024


class ScriptSource(Protocol):
    """Where the classifier reads scripts: the bytes of a file, or None (cannot be read)."""

    def content_of(self, path: str) -> bytes | None: ...


@dataclass
class WrittenFiles:
    """The files this conversation wrote (write_file), by absolute path."""

    files: dict[str, bytes] = field(default_factory=dict)

    def record(self, path: str, content: bytes | str) -> None:
        self.files[paths.norm(path)] = content.encode() if isinstance(content, str) else content

    def content_of(self, path: str) -> bytes | None:
        return self.files.get(paths.norm(path))


@dataclass
class ReaderSource:
    """Scripts read by a callable (e.g. over the conversation's SSH connection), bounded and
    remembered: `read(path, max_bytes)` returns the bytes or None; an error is None."""

    read: Callable[[str, int], bytes | None]
    max_bytes: int = MAX_SCRIPT_BYTES
    _cache: dict[str, bytes | None] = field(default_factory=dict)

    def content_of(self, path: str) -> bytes | None:
        if path not in self._cache:
            try:
                self._cache[path] = self.read(path, self.max_bytes + 1)
            except Exception:  # noqa: BLE001 - any failure to read means: not seen (unknown)
                self._cache[path] = None
        return self._cache[path]


@dataclass
class ChainedSource:
    """The first source that can give a file wins (conversation's files, then the server)."""

    sources: tuple[ScriptSource, ...]

    def content_of(self, path: str) -> bytes | None:
        for s in self.sources:
            got = s.content_of(path)
            if got is not None:
                return got
        return None


_STDIN_PATHS = frozenset({"-", "/dev/stdin", "/proc/self/fd/0", "/dev/fd/0"})


def judge_script_file(an: Analyzer, path: Word, origin: str, language: str, depth: int,
                      feed: Feed | None = None) -> Finding:
    """Running the file at `path` (`bash F`, `./F`, `source F`): judged by its content."""
    from vpsagent.safety.decode import output_of_procsub

    if path.procsub is not None:
        return judge_feed(an, output_of_procsub(an, path.procsub), origin, language, depth)
    if path.value in _STDIN_PATHS and feed is not None:
        return judge_feed(an, feed, origin, language, depth)
    if path.dynamic:
        return Finding(UNKNOWN, f"{origin} runs a script whose name is only known at run time")
    where = path.value if path.value.startswith(("~", "$")) else an.resolve(path.value)
    if where in an.written:
        content = an.written[where]
        if content is None:
            return Finding(DES, f"{origin} runs {path.value}, written by this command from content that cannot be seen")
        return judge_code(an, content, language, f"{origin} (written by this command)", depth)
    if an.scripts is None:
        return Finding(UNKNOWN, f"{origin} runs the script {path.value}, whose content the gate has not seen")
    if where in an.seen_scripts:
        return Finding(UNKNOWN, f"{origin} runs {path.value} again from inside itself")
    content = an.scripts.content_of(where)
    if content is None:
        return Finding(UNKNOWN, f"{origin} runs the script {path.value}, which could not be read to judge it")
    if len(content) > MAX_SCRIPT_BYTES:
        return Finding(UNKNOWN, f"{origin} runs the script {path.value}, too long to judge ({len(content)} bytes)")
    inner = an.child(depth + 1)
    inner.seen_scripts = an.seen_scripts | {where}
    return judge_code(inner, content, language, f"{origin} ({path.value})", depth)


def judge_feed(an: Analyzer, feed: Feed, origin: str, language: str, depth: int) -> Finding:
    """Code a program reads on stdin: judged when it can be seen, destructive when it cannot."""
    if feed.kind == "data":
        piped = Finding(UNKNOWN, f"{origin} runs code piped into it")
        return piped.worst(judge_code(an, feed.data, language, origin, depth))
    if feed.kind == "file":
        if feed.piped and (an.scripts is None or an.scripts.content_of(an.resolve(feed.path)) is None):
            # `cat F | sh`: code from a pipe that cannot be seen
            return Finding(DES, f"{origin} runs {feed.path}, piped in without the gate seeing it")
        return judge_script_file(an, Word.plain(feed.path), origin, language, depth)
    if feed.kind == "unseen":
        return Finding(DES, f"{origin} runs code piped from `{feed.source or 'another command'}`, which cannot be seen")
    return Finding(UNKNOWN, f"{origin} reads commands from its input (an interactive session)")


_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "busybox", "yash", "posh"})


def shebang_language(content: bytes) -> str:
    """The interpreter a `#!` line names: sh, python, perl…; `sh` when there is none."""
    if not content.startswith(b"#!"):
        return "sh"
    line = content.split(b"\n", 1)[0][2:].decode("utf-8", "replace").split()
    if line and line[0].endswith("/env"):
        line = [w for w in line[1:] if not w.startswith("-")]
    name = line[0].rsplit("/", 1)[-1] if line else ""
    if name in _SHELLS:
        return "sh"
    m = re.match(r"(python|perl|ruby|node|php|lua)", name)
    return m.group(1) if m else name or "unknown"


def judge_code(an: Analyzer, content: bytes, language: str, origin: str, depth: int) -> Finding:
    """Code in a language: shell is parsed like a command; python and friends as inline code."""
    from vpsagent.safety.special.interpreters import judge_inline_code

    text = content.decode("utf-8", "replace")
    lang = shebang_language(content) if language == "exec" else language
    if lang == "crontab":
        return _crontab(an, text, with_user=False, path=origin, depth=depth)
    if lang == "sh":
        cls = an.nested(text, depth + 1)
        if cls.risk is RO:
            return Finding(RO, f"{origin} runs only read-only commands", cls.programs)
        return Finding(cls.risk, f"{origin} runs: {cls.summary}", cls.programs)
    return judge_inline_code(an, lang, text, origin, depth)


# ---------------------------------------------------------------- files that run later


def judge_persistent_content(an: Analyzer, kind: str, content: bytes, path: str, depth: int) -> Finding:
    text = content.decode("utf-8", "replace")
    if kind in ("crontab", "user-crontab"):
        return _crontab(an, text, with_user=kind == "crontab", path=path, depth=depth)
    if kind == "unit":
        return _unit(an, text, path, depth)
    if kind == "shell":
        return judge_code(an, content, "exec", f"{path}", depth)
    return Finding(RO, "")


_CRON_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\s*=")


def crontab_commands(text: str, *, with_user: bool) -> list[str]:
    """The command of every schedule line of a crontab (`%` starts the command's stdin)."""
    out: list[str] = []
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#") or _CRON_ENV.match(s):
            continue
        fields = s.split(None, 1 if s.startswith("@") else 5)
        need = 2 if s.startswith("@") else 6
        if len(fields) < need:
            out.append(s)  # not a schedule line: judge it whole (fail closed)
            continue
        command = fields[-1]
        if with_user:
            command = command.split(None, 1)[1] if len(command.split(None, 1)) == 2 else ""
        out.append(re.split(r"(?<!\\)%", command, maxsplit=1)[0])
    return out


def _crontab(an: Analyzer, text: str, *, with_user: bool, path: str, depth: int) -> Finding:
    out = Finding(RO, "")
    # a system crontab names a user before the command; a line without one is judged both ways
    commands = crontab_commands(text, with_user=with_user)
    if with_user:
        commands += crontab_commands(text, with_user=False)
    for command in commands:
        cls = an.nested(command, depth + 1)
        if cls.risk > out.risk:
            out = Finding(cls.risk, f"the cron line in {path} runs `{command[:60]}`: {cls.summary}", cls.programs)
    return out


_EXEC_LINE = re.compile(r"^\s*(Exec\w*)\s*=\s*[-@:+!]*(.*)$", re.M)


def _unit(an: Analyzer, text: str, path: str, depth: int) -> Finding:
    out = Finding(RO, "")
    for m in _EXEC_LINE.finditer(text):
        cls = an.nested(m.group(2), depth + 1)
        if cls.risk > out.risk:
            out = Finding(cls.risk, f"{m.group(1)} in {path} runs `{m.group(2)[:60]}`: {cls.summary}", cls.programs)
    return out


# ---------------------------------------------------------------- the write_file tool


def classify_write(path: str, content: bytes | str | None = None, mode: int | None = None,
                   scripts: ScriptSource | None = None) -> Classification:
    """The write_file tool: a change; destructive for critical paths; a file that will be run
    (shebang, executable mode, persistence path) is judged by its content."""
    from vpsagent.safety.analyze import Analyzer

    data = content.encode() if isinstance(content, str) else content
    found = _write_finding(Analyzer(scripts), path, data, mode)
    argv = ("write_file", path)
    part = Part(argv, found.risk, found.reason, " ".join(argv), ("write_file", *found.programs))
    return Classification(found.risk, (found.reason,), part.programs, (argv,), (part,), f"write_file {path}")


def _write_finding(an: Analyzer, path: str, data: bytes | None, mode: int | None) -> Finding:
    if not path.strip():
        return Finding(DES, "write_file without a path")
    p = paths.norm(path)
    if paths.is_critical_file(path) or p in paths.SYSTEM_DIRS:
        return Finding(DES, f"writing {path} replaces a critical system file")
    kind = paths.persistence_kind(path)
    if kind is not None:
        base = Finding(UNKNOWN, f"writing {path} installs code that runs later")
        return base if data is None else base.worst(judge_persistent_content(an, kind, data, path, 0))
    executable = mode is not None and mode & 0o111
    if data is not None and (data.startswith(b"#!") or executable):
        judged = judge_code(an, data, "exec", f"the script written to {path}", 0)
        return Finding(CHANGE, f"writing the script {path} changes a file").worst(judged)
    return Finding(CHANGE, f"writing {path} changes a file")
