"""A small POSIX/bash shell lexer and parser, just deep enough for the safety gate.

Why not `shlex`: it does not know `$(...)` nesting, backticks, `2>&1`, `&>`, heredocs,
`$'..'` or that `>` glued to a word is an operator. A text match on the raw command is
what we must avoid, so we tokenise the way bash does and hand the classifier a flat
list of simple commands with their words, redirections and the bodies of every command
substitution (which the classifier parses again, recursively).

The parser flattens control structure (if/while/for/case, subshells, groups, function
bodies): for safety every command that *may* run counts, whichever branch runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


class ShellSyntaxError(ValueError):
    """The text is not a complete shell command (unbalanced quotes, parens...)."""


@dataclass
class Word:
    value: str  # quotes removed; expansions kept as written ("$HOME/x")
    dynamic: bool = False  # contains a $var, ${..}, $(..), `..` or $((..)) expansion
    prefix: str = ""  # literal text before the first expansion
    subs: list[str] = field(default_factory=list)  # bodies of $(..), `..`, <(..), >(..)
    quoted: bool = False
    computed: bool = False  # contains a command substitution (its value is program output)
    many: bool = False  # stands for every path `find -exec {}` / `xargs` will pass


@dataclass
class Redirect:
    op: str  # ">", ">>", ">|", "&>", "&>>", "<", "<<", "<<<", "<>", ">&", "<&"
    target: Word
    fd: str = ""
    body: str | None = None  # the text of a heredoc (for `<<`) — what the command reads


@dataclass
class SimpleCommand:
    words: list[Word]
    redirects: list[Redirect]
    functions: tuple[str, ...]  # names of the function bodies this command sits in
    header: bool = False  # a `for`/`case`/`select` header: words are data, not a command
    pipe_from: int | None = None  # index of the command whose output this one reads (`a | b`)


@dataclass
class Script:
    commands: list[SimpleCommand]
    extra_subs: list[str]  # substitutions from heredoc bodies and arithmetic
    functions: set[str]


_OPS = ("&&", "||", ";;&", ";;", ";&", "|&", ";", "&", "|", "(", ")")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SPECIAL_PARAMS = set("@*#?-$!0123456789")


def _match_close(s: str, i: int, open_ch: str = "(", close_ch: str = ")") -> int:
    """Index of the bracket closing the one just before s[i], honouring quotes."""
    depth = 1
    n = len(s)
    while i < n:
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c == "'":
            j = s.find("'", i + 1)
            if j < 0:
                raise ShellSyntaxError("unterminated single quote")
            i = j + 1
            continue
        if c == '"':
            i = _skip_dquote(s, i + 1)
            continue
        if c == "`":
            j = _find_backtick(s, i + 1)
            i = j + 1
            continue
        if c == open_ch:
            depth += 1
        elif c == close_ch:
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ShellSyntaxError(f"unbalanced '{open_ch}'")


def _skip_dquote(s: str, i: int) -> int:
    """Index just after the closing double quote (i is just after the opening one)."""
    n = len(s)
    while i < n:
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            return i + 1
        if c == "$" and s.startswith("$(", i):
            i = _match_close(s, i + 2) + 1
            continue
        if c == "`":
            i = _find_backtick(s, i + 1) + 1
            continue
        i += 1
    raise ShellSyntaxError("unterminated double quote")


def _find_backtick(s: str, i: int) -> int:
    n = len(s)
    while i < n:
        if s[i] == "\\":
            i += 2
            continue
        if s[i] == "`":
            return i
        i += 1
    raise ShellSyntaxError("unterminated backquote")


class _WordBuilder:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.dynamic = False
        self.prefix_done = False
        self.prefix: list[str] = []
        self.subs: list[str] = []
        self.quoted = False
        self.computed = False
        self.started = False

    def lit(self, text: str) -> None:
        self.started = True
        self.parts.append(text)
        if not self.prefix_done:
            self.prefix.append(text)

    def dyn(self, text: str, sub: str | None = None) -> None:
        self.started = True
        self.parts.append(text)
        self.dynamic = True
        self.prefix_done = True
        if sub is not None:
            self.subs.append(sub)
            self.computed = True

    def build(self) -> Word:
        return Word(
            value="".join(self.parts),
            dynamic=self.dynamic,
            prefix="".join(self.prefix),
            subs=self.subs,
            quoted=self.quoted,
            computed=self.computed,
        )


def _read_dollar(s: str, i: int, wb: _WordBuilder, extra_subs: list[str]) -> int:
    """s[i] == '$'. Consume one expansion into wb; return the new index."""
    n = len(s)
    if s.startswith("$((", i):
        j = _match_close(s, i + 3)
        # arithmetic: `$(( ))`; its body may itself hold $(..)
        if j + 1 >= n or s[j + 1] != ")":
            # it was `$( (subshell) )` after all
            j = _match_close(s, i + 2)
            body = s[i + 2 : j]
            wb.dyn(s[i : j + 1], body)
            return j + 1
        extra_subs.extend(_subs_in_text(s[i + 3 : j], extra_subs))
        wb.dyn(s[i : j + 2])
        return j + 2
    if s.startswith("$(", i):
        j = _match_close(s, i + 2)
        wb.dyn(s[i : j + 1], s[i + 2 : j])
        return j + 1
    if s.startswith("${", i):
        j = _match_close(s, i + 2, "{", "}")
        inner = s[i + 2 : j]
        for sub in _subs_in_text(inner, extra_subs):
            wb.subs.append(sub)
            wb.computed = True
        wb.dyn(s[i : j + 1])
        return j + 1
    if i + 1 < n:
        m = _NAME_RE.match(s, i + 1)
        if m:
            wb.dyn(s[i : m.end()])
            return m.end()
        if s[i + 1] in _SPECIAL_PARAMS:
            wb.dyn(s[i : i + 2])
            return i + 2
    wb.lit("$")
    return i + 1


_ANSI_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "e": "\x1b", "E": "\x1b",
                 "f": "\f", "v": "\v", "\\": "\\", "'": "'", '"': '"', "?": "?"}


def _ansi_c(s: str, i: int) -> tuple[str, int]:
    """Decode $'...' starting at the char after the opening quote."""
    out = []
    n = len(s)
    while i < n:
        c = s[i]
        if c == "'":
            return "".join(out), i + 1
        if c == "\\" and i + 1 < n:
            d = s[i + 1]
            if d in _ANSI_ESCAPES:
                out.append(_ANSI_ESCAPES[d])
                i += 2
                continue
            m = re.match(r"x([0-9a-fA-F]{1,2})|([0-7]{1,3})|u([0-9a-fA-F]{1,4})", s[i + 1 :])
            if m:
                num = m.group(1) or m.group(3)
                out.append(chr(int(num, 16)) if num else chr(int(m.group(2), 8)))
                i += 1 + m.end()
                continue
            out.append(d)
            i += 2
            continue
        out.append(c)
        i += 1
    raise ShellSyntaxError("unterminated $'...' quote")


def _read_dquote(s: str, i: int, wb: _WordBuilder, extra_subs: list[str]) -> int:
    """i just after the opening '"'. Returns index after the closing quote."""
    n = len(s)
    wb.quoted = True
    wb.started = True
    while i < n:
        c = s[i]
        if c == '"':
            return i + 1
        if c == "\\" and i + 1 < n:
            d = s[i + 1]
            if d in '$`"\\':
                wb.lit(d)
            elif d == "\n":
                pass
            else:
                wb.lit("\\" + d)
            i += 2
            continue
        if c == "$":
            i = _read_dollar(s, i, wb, extra_subs)
            continue
        if c == "`":
            j = _find_backtick(s, i + 1)
            wb.dyn(s[i : j + 1], _unescape_backtick(s[i + 1 : j]))
            i = j + 1
            continue
        wb.lit(c)
        i += 1
    raise ShellSyntaxError("unterminated double quote")


def _unescape_backtick(body: str) -> str:
    return re.sub(r"\\([$`\\])", r"\1", body)


def _subs_in_text(text: str, extra_subs: list[str]) -> list[str]:
    """Command substitutions inside text that undergoes expansion (heredoc, ${..})."""
    wb = _WordBuilder()
    i = 0
    n = len(text)
    try:
        while i < n:
            c = text[i]
            if c == "\\":
                i += 2
            elif c == "$":
                i = _read_dollar(text, i, wb, extra_subs)
            elif c == "`":
                j = _find_backtick(text, i + 1)
                wb.subs.append(_unescape_backtick(text[i + 1 : j]))
                i = j + 1
            else:
                i += 1
    except ShellSyntaxError:
        # an unbalanced $( in expanded text fails in the shell too; classify what we saw
        wb.subs.append(text)
    return wb.subs


def tokenize(s: str) -> tuple[list[tuple], list[str]]:
    """Tokens: ("word", Word) | ("op", str) | ("redir", op, fd, holder); plus heredoc/arith subs.

    `holder` is a dict that receives the heredoc body under "body" once it has been read.
    """
    tokens: list[tuple] = []
    extra_subs: list[str] = []
    pending_heredocs: list[tuple[str, bool, bool, dict]] = []  # (delimiter, strip_tabs, expand, holder)
    n = len(s)
    i = 0
    wb = _WordBuilder()
    expect_heredoc_delim: tuple[bool, dict] | None = None

    def flush() -> None:
        nonlocal wb, expect_heredoc_delim
        if wb.started:
            w = wb.build()
            if expect_heredoc_delim is not None:
                pending_heredocs.append((w.value, expect_heredoc_delim[0], not w.quoted, expect_heredoc_delim[1]))
                expect_heredoc_delim = None
            tokens.append(("word", w))
        wb = _WordBuilder()

    def at_command_start() -> bool:
        if not tokens:
            return True
        kind = tokens[-1][0]
        return kind == "op" and tokens[-1][1] in _OPS

    while i < n:
        c = s[i]
        if c == "\\":
            if i + 1 < n and s[i + 1] == "\n":
                i += 2
                continue
            if i + 1 >= n:
                raise ShellSyntaxError("trailing backslash")
            wb.lit(s[i + 1])
            wb.quoted = True
            i += 2
            continue
        if c == "'":
            j = s.find("'", i + 1)
            if j < 0:
                raise ShellSyntaxError("unterminated single quote")
            wb.lit(s[i + 1 : j])
            wb.quoted = True
            i = j + 1
            continue
        if c == '"':
            i = _read_dquote(s, i + 1, wb, extra_subs)
            continue
        if c == "$":
            if s.startswith("$'", i):
                text, i = _ansi_c(s, i + 2)
                wb.lit(text)
                wb.quoted = True
                continue
            if s.startswith('$"', i):
                i = _read_dquote(s, i + 2, wb, extra_subs)
                continue
            i = _read_dollar(s, i, wb, extra_subs)
            continue
        if c == "`":
            j = _find_backtick(s, i + 1)
            wb.dyn(s[i : j + 1], _unescape_backtick(s[i + 1 : j]))
            i = j + 1
            continue
        if c in " \t\r":
            flush()
            i += 1
            continue
        if c == "#" and not wb.started:
            j = s.find("\n", i)
            i = n if j < 0 else j
            continue
        if c == "\n":
            flush()
            tokens.append(("op", ";"))
            i += 1
            if pending_heredocs:
                i = _read_heredocs(s, i, pending_heredocs, extra_subs)
                pending_heredocs = []
            continue
        if c in "<>" and s.startswith("(", i + 1):
            # process substitution <(cmd) / >(cmd): runs cmd, the word is a file name
            j = _match_close(s, i + 2)
            wb.dyn(s[i : j + 1], s[i + 2 : j])
            i = j + 1
            continue
        if c in "<>" or (c == "&" and s.startswith(">", i + 1)):
            fd = ""
            if wb.started and not wb.quoted and not wb.dynamic and (
                wb.build().value.isdigit() or re.fullmatch(r"\{[A-Za-z_]\w*\}", wb.build().value)
            ):
                fd = wb.build().value
                wb = _WordBuilder()
            else:
                flush()
            for op in ("&>>", "&>", "<<<", "<<-", "<<", "<>", "<&", ">>", ">|", ">&", "<", ">"):
                if s.startswith(op, i):
                    break
            holder: dict = {}
            tokens.append(("redir", op, fd, holder))
            if op in ("<<", "<<-"):
                expect_heredoc_delim = (op == "<<-", holder)
            i += len(op)
            continue
        after_for = bool(tokens) and tokens[-1][0] == "word" and tokens[-1][1].value == "for" and not tokens[-1][1].quoted
        if c == "(" and s.startswith("((", i) and (at_command_start() or after_for) and not wb.started:
            # arithmetic command (( ... )): no programs run, but $(..) inside would
            try:
                j = _match_close(s, i + 2)
            except ShellSyntaxError:
                j = -1
            if j >= 0 and s.startswith(")", j + 1):
                extra_subs.extend(_subs_in_text(s[i + 2 : j], extra_subs))
                i = j + 2
                continue
        if c in ";&|()":
            flush()
            for op in _OPS:
                if s.startswith(op, i):
                    break
            tokens.append(("op", op))
            i += len(op)
            continue
        wb.lit(c)
        i += 1
    flush()
    if pending_heredocs:
        # heredoc without a body: bash warns and runs the command anyway
        pass
    return tokens, extra_subs


def _read_heredocs(s: str, i: int, pending: list[tuple[str, bool, bool, dict]], extra_subs: list[str]) -> int:
    for delim, strip_tabs, expand, holder in pending:
        body_lines = []
        while i < len(s):
            j = s.find("\n", i)
            line = s[i:] if j < 0 else s[i:j]
            i = len(s) if j < 0 else j + 1
            check = line.lstrip("\t") if strip_tabs else line
            if check == delim:
                break
            body_lines.append(line.lstrip("\t") if strip_tabs else line)
        holder["body"] = "\n".join(body_lines) + "\n"
        if expand:
            extra_subs.extend(_subs_in_text("\n".join(body_lines), extra_subs))
    return i


_RESERVED_SKIP = {"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "esac"}
_HEADERS = {"for", "select", "case"}


def parse(text: str) -> Script:
    tokens, extra_subs = tokenize(text)
    commands: list[SimpleCommand] = []
    functions: set[str] = set()
    words: list[Word] = []
    redirects: list[Redirect] = []
    header = False
    # stack of ("(" | "{" | "case", function name or None)
    stack: list[tuple[str, str | None]] = []
    pending_func: str | None = None
    case_pattern = False  # between `in`/`;;` and `)` of a case: pattern words, not commands

    def func_ctx() -> tuple[str, ...]:
        return tuple(f for _, f in stack if f)

    pipe_from: int | None = None

    def flush() -> None:
        nonlocal words, redirects, header, pipe_from
        if words or redirects:
            commands.append(SimpleCommand(words, redirects, func_ctx(), header, pipe_from))
            pipe_from = None
        words, redirects, header = [], [], False

    k = 0
    while k < len(tokens):
        tok = tokens[k]
        kind = tok[0]
        if case_pattern:
            if tok == ("op", ")"):
                case_pattern = False
            elif kind == "word" and tok[1].value == "esac" and not tok[1].quoted:
                case_pattern = False
                if stack and stack[-1][0] == "case":
                    stack.pop()
            k += 1
            continue
        if kind == "redir":
            op, fd = tok[1], tok[2]
            if k + 1 >= len(tokens) or tokens[k + 1][0] != "word":
                raise ShellSyntaxError(f"redirection {op} without a target")
            redirects.append(Redirect(op, tokens[k + 1][1], fd, tok[3].get("body")))
            k += 2
            continue
        if kind == "op":
            op = tok[1]
            if op == "(":
                nxt = tokens[k + 1] if k + 1 < len(tokens) else None
                if len(words) == 1 and not redirects and nxt == ("op", ")"):
                    pending_func = words[0].value
                    functions.add(pending_func)
                    words = []
                    k += 2
                    continue
                if words and not header:
                    raise ShellSyntaxError("unexpected '('")
                flush()
                stack.append(("(", pending_func))
                pending_func = None
            elif op == ")":
                if stack and stack[-1][0] == "(":
                    flush()
                    stack.pop()
                elif stack and stack[-1][0] == "case":
                    # a case pattern: its words are data
                    words, redirects, header = [], [], False
                else:
                    raise ShellSyntaxError("unbalanced ')'")
            else:
                flush()
                if op in (";;", ";&", ";;&") and stack and stack[-1][0] == "case":
                    case_pattern = True
                # `a | b`: b reads a's output (kept for `echo ... | sh` and `... | base64 -d | sh`)
                pipe_from = len(commands) - 1 if op in ("|", "|&") and commands else None
            k += 1
            continue
        w: Word = tok[1]
        if not words and not redirects and not w.quoted and not header:
            if w.value == "{":
                stack.append(("{", pending_func))
                pending_func = None
                k += 1
                continue
            if w.value == "}":
                if not stack or stack[-1][0] != "{":
                    raise ShellSyntaxError("unbalanced '}'")
                stack.pop()
                k += 1
                continue
            if w.value in _RESERVED_SKIP:
                if w.value == "esac" and stack and stack[-1][0] == "case":
                    stack.pop()
                k += 1
                continue
            if w.value == "function" and k + 1 < len(tokens) and tokens[k + 1][0] == "word":
                pending_func = tokens[k + 1][1].value
                functions.add(pending_func)
                k += 2
                if k + 1 < len(tokens) and tokens[k] == ("op", "(") and tokens[k + 1] == ("op", ")"):
                    k += 2
                continue
            if w.value in _HEADERS:
                header = True
                if w.value == "case":
                    stack.append(("case", None))
        if header and not w.quoted and w.value == "in" and stack and stack[-1][0] == "case":
            # `case WORD in`: the patterns follow; end the header here
            words.append(w)
            flush()
            case_pattern = True
            k += 1
            continue
        words.append(w)
        k += 1
    flush()
    if stack:
        raise ShellSyntaxError(f"unclosed '{stack[-1][0]}'")
    return Script(commands, extra_subs, functions)
