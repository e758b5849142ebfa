"""The shell parser: tree-sitter-bash, imported lazily, and words read the way bash reads them.

`parse(text)` gives the syntax tree; `word(node)` turns an argument node into a `Word`: the
text bash would pass (quotes removed, escapes applied) and what of it is only known at
run time. tree-sitter is imported inside `parser()` so that `vpsagent --help` never pays
for it, and the Parser is built once per process.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tree_sitter import Node, Parser, Tree


@functools.cache
def parser() -> Parser:
    """The one tree-sitter Parser for bash (built on first use)."""
    import tree_sitter_bash
    from tree_sitter import Language, Parser

    return Parser(Language(tree_sitter_bash.language()))


_PARSING = threading.Lock()  # one Parser per process; tree-sitter parsers are not thread-safe


def parse(text: str) -> Tree:
    data = text.encode("utf-8", "surrogateescape")
    with _PARSING:
        return parser().parse(data)


def text_of(node: Node) -> str:
    raw = node.text
    return raw.decode("utf-8", "surrogateescape") if raw is not None else ""


# The node types that hold one shell word (an argument, a command name, a redirect target).
WORD_TYPES = frozenset({
    "word", "string", "raw_string", "ansi_c_string", "translated_string", "concatenation",
    "simple_expansion", "expansion", "command_substitution", "process_substitution",
    "arithmetic_expansion", "number", "brace_expression", "string_content", "$",
})
SUBSTITUTIONS = frozenset({"command_substitution", "process_substitution"})
_GLOB = re.compile(r"[*?]|\[[^\]]+\]")
_BRACE = re.compile(r"\{([^{}]*,[^{}]*)\}")


@dataclass(frozen=True, slots=True)
class Word:
    """One word as bash would pass it.

    `value` is the text with quotes removed and escapes applied; parts only known at run
    time stay as written (`$HOME`, `$(date)`). `prefix` is the static text before the first
    such part (the whole value when `dynamic` is false).
    """

    value: str
    dynamic: bool = False
    prefix: str = ""
    quoted: bool = False  # some of it was quoted: `'-rf'` is still an option, but a glob in it is not
    computed: bool = False  # holds a command substitution
    glob: bool = False  # an unquoted *, ? or [...] that the shell expands
    many: bool = False  # stands for many values (xargs input, find's {})
    expanded: bool = False  # a variable in it was replaced by its known value
    subs: tuple[Node, ...] = field(default=(), compare=False)  # $(…), `…`, <(…), >( …) inside
    procsub: Node | None = field(default=None, compare=False)  # the word IS <(…): a path to its output

    @staticmethod
    def plain(value: str) -> Word:
        return Word(value, prefix=value)

    def with_value(self, value: str) -> Word:
        return Word(value, self.dynamic, value if not self.dynamic else self.prefix, self.quoted,
                    self.computed, self.glob, self.many, self.expanded, self.subs, self.procsub)

    @property
    def is_option(self) -> bool:
        return self.value.startswith("-") and len(self.value) > 1 and not self.dynamic


Resolver = Callable[[str], "str | None"]  # variable name -> its value when known statically


@dataclass
class _Acc:
    parts: list[str] = field(default_factory=list)
    prefix: list[str] = field(default_factory=list)
    dynamic: bool = False
    quoted: bool = False
    computed: bool = False
    glob: bool = False
    expanded: bool = False
    subs: list[Node] = field(default_factory=list)

    def static(self, s: str) -> None:
        self.parts.append(s)
        if not self.dynamic:
            self.prefix.append(s)

    def runtime(self, s: str) -> None:
        self.parts.append(s)
        self.dynamic = True


def word(node: Node, resolve: Resolver | None = None) -> Word:
    """Read one argument node as bash would."""
    acc = _Acc()
    _read(node, acc, resolve)
    value = "".join(acc.parts)
    procsub = node if node.type == "process_substitution" else None
    return Word(value, acc.dynamic, "".join(acc.prefix) if acc.dynamic else value, acc.quoted,
                acc.computed, acc.glob, False, acc.expanded, tuple(acc.subs), procsub)


def _read(node: Node, acc: _Acc, resolve: Resolver | None) -> None:
    kind = node.type
    reader = _READERS.get(kind)
    if reader is not None:
        reader(node, acc, resolve)
        return
    if kind in SUBSTITUTIONS:
        acc.subs.append(node)
        acc.computed = True
        acc.runtime(text_of(node))
        return
    # expansions, arithmetic, brace sequences and anything new: known only at run time,
    # but substitutions inside still run
    found = [n for n in descendants(node) if n.type in SUBSTITUTIONS]
    acc.subs.extend(found)
    acc.computed = acc.computed or bool(found)
    acc.runtime(text_of(node))


def _read_word(node: Node, acc: _Acc, resolve: Resolver | None) -> None:
    raw = text_of(node)
    if _GLOB.search(re.sub(r"\\.", "", raw)):
        acc.glob = True
    acc.static(re.sub(r"\\(.)", r"\1", raw.replace("\\\n", ""), flags=re.S))


def _read_raw_string(node: Node, acc: _Acc, resolve: Resolver | None) -> None:
    acc.quoted = True
    acc.static(text_of(node)[1:-1])


def _read_ansi_c(node: Node, acc: _Acc, resolve: Resolver | None) -> None:
    acc.quoted = True
    acc.static(ansi_c(text_of(node)[2:-1]))


def _read_string(node: Node, acc: _Acc, resolve: Resolver | None) -> None:
    acc.quoted = True
    for child in node.children:
        if child.type == '"':
            continue
        if child.type == "string_content":
            acc.static(re.sub(r"\\([$`\"\\\n])", lambda m: "" if m.group(1) == "\n" else m.group(1), text_of(child)))
        else:
            _read(child, acc, resolve)


def _read_concatenation(node: Node, acc: _Acc, resolve: Resolver | None) -> None:
    for child in node.children:
        _read(child, acc, resolve)


def _read_number(node: Node, acc: _Acc, resolve: Resolver | None) -> None:
    acc.static(text_of(node))


def _read_simple_expansion(node: Node, acc: _Acc, resolve: Resolver | None) -> None:
    raw = text_of(node)
    name = raw[1:]
    if node.type == "expansion":
        m = re.fullmatch(r"\$\{([A-Za-z_]\w*)\}", raw)
        name = m.group(1) if m else ""
    known = resolve(name) if resolve is not None and name else None
    if known is not None:
        acc.static(known)
        acc.expanded = True
        return
    acc.subs.extend(n for n in descendants(node) if n.type in SUBSTITUTIONS)
    acc.runtime(raw)


def _read_dollar(node: Node, acc: _Acc, resolve: Resolver | None) -> None:
    acc.static("$")


_READERS: dict[str, Callable[[Node, _Acc, Resolver | None], None]] = {
    "word": _read_word,
    "raw_string": _read_raw_string,
    "ansi_c_string": _read_ansi_c,
    "string": _read_string,
    "translated_string": _read_string,
    "concatenation": _read_concatenation,
    "number": _read_number,
    "simple_expansion": _read_simple_expansion,
    "expansion": _read_simple_expansion,
    "$": _read_dollar,
}


def words(node: Node, resolve: Resolver | None = None) -> list[Word]:
    """One node as the words bash makes of it: brace expansion (`{rm,-rf,/}`) splits it."""
    w = word(node, resolve)
    if w.expanded and not w.quoted and not w.dynamic and re.search(r"\s", w.value.strip()):
        # an unquoted variable is split into words: `c='rm -rf'; $c /srv` runs `rm -rf /srv`
        return [Word(v, prefix=v, expanded=True) for v in w.value.split()]
    if w.quoted or w.dynamic or not _BRACE.search(w.value):
        return [w]
    return [Word(v, prefix=v, glob=w.glob, expanded=True) for v in expand_braces(w.value)]


def expand_braces(text: str, limit: int = 64) -> list[str]:
    """`/{etc,bin}` -> [`/etc`, `/bin`] (what bash passes), capped so it cannot blow up."""
    out = [text]
    for _ in range(8):
        nxt: list[str] = []
        changed = False
        for item in out:
            m = _BRACE.search(item)
            if not m:
                nxt.append(item)
                continue
            changed = True
            nxt.extend(item[: m.start()] + alt + item[m.end():] for alt in m.group(1).split(","))
        out = nxt[:limit]
        if not changed:
            break
    return out


_ANSI = re.compile(r"\\(x[0-9A-Fa-f]{1,2}|u[0-9A-Fa-f]{1,4}|U[0-9A-Fa-f]{1,8}|[0-7]{1,3}|c.|.)", re.S)
_SIMPLE_ESC = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "e": "\x1b", "E": "\x1b",
               "f": "\f", "v": "\v", "\\": "\\", "'": "'", '"': '"', "?": "?"}


def ansi_c(body: str) -> str:
    """The value of $'…' (also echo -e and printf %b escapes, which are the same family)."""

    def one(m: re.Match[str]) -> str:
        e = m.group(1)
        if e[0] in "xuU" and len(e) > 1:
            return chr(int(e[1:], 16)) if int(e[1:], 16) < 0x110000 else ""
        if e[0] in "xuU":
            return "\\" + e
        if e[0] in "01234567":
            return chr(int(e, 8) & 0xFF)
        if e[0] == "c":
            return chr(ord(e[1]) & 0x1F)
        return _SIMPLE_ESC.get(e, "\\" + e)

    return _ANSI.sub(one, body)


def descendants(node: Node) -> Iterator[Node]:
    stack = list(reversed(node.children))
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(n.children))


def has_error(node: Node) -> bool:
    return node.has_error


def normalize(command: str) -> str:
    """Words and operators separated by single spaces: `a|b  >x` -> `a | b > x`.

    Quotes are removed as the shell would, so a policy rule matches however it is quoted.
    """
    tree = parse(command)
    out: list[str] = []
    _flatten(tree.root_node, out)
    while out and out[-1] in (";", "&"):
        out.pop()
    return " ".join(" ".join(out).split())


def _flatten(node: Node, out: list[str]) -> None:
    for child in node.children:
        kind = child.type
        if kind == "comment":
            continue
        if kind in ("heredoc_body", "heredoc_end"):
            continue
        if kind in WORD_TYPES and kind not in SUBSTITUTIONS:
            out.append(word(child).value)
        elif child.child_count == 0:
            out.append(text_of(child))
        else:
            _flatten(child, out)
