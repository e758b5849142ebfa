"""What a command writes to stdout, when the command line alone decides it.

A pipeline that feeds a shell (`… | sh`) is judged by the code that arrives. The producers
evaluated here are the ones used to hide code: echo (-e), printf (octal, hex, %b), cat of a
heredoc, base64/base32 -d, openssl base64 -d, xxd -r (-p), rev, tr, gzip/xz -d. Anything
else produces output the gate cannot see ("unseen"), and a shell fed that is destructive.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from vpsagent.safety.analyze import NO_FEED, Feed, short
from vpsagent.safety.parse import ansi_c, text_of, words

if TYPE_CHECKING:
    from tree_sitter import Node

    from vpsagent.safety.analyze import Analyzer

MAX_DECODED = 1 << 20
_SEQUENCES = frozenset({"compound_statement", "subshell", "list"})


def output_of(an: Analyzer, node: Node | None, feed: Feed) -> Feed:
    """The stdout of one node of the tree, given what it reads."""
    if node is None:
        return Feed("data", b"")
    kind = node.type
    if kind == "command":
        return _command_output(an, node, feed)
    if kind == "redirected_statement":
        body = node.child_by_field_name("body")
        redirects = [c for c in node.named_children if c is not body]
        if any(_stdout_to_file(r) for r in redirects):
            return Feed("data", b"")
        return output_of(an, body, _input(an, redirects, feed))
    if kind == "pipeline":
        current = feed
        for child in node.named_children:
            current = output_of(an, child, current)
        return current
    if kind in _SEQUENCES:
        return _sequence(an, node)
    return Feed("unseen", source=short(text_of(node)))


def _sequence(an: Analyzer, node: Node) -> Feed:
    """`(a; b)` writes a's output then b's: known when every part is, else unseen with the
    parts that can be seen kept (`(crontab -l; echo '@reboot rm -rf /')`)."""
    out = b""
    unseen: list[str] = []
    for child in node.named_children:
        got = output_of(an, child, NO_FEED)
        if got.kind != "data":
            unseen.append(got.source or got.path or short(text_of(child)))
        out += got.data
    if unseen:
        return Feed("unseen", data=out, source=", ".join(unseen))
    return Feed("data", out)


def output_of_procsub(an: Analyzer, node: Node) -> Feed:
    """What `<(…)` yields when read: the output of the commands inside."""
    inner = [c for c in node.named_children if c.type != "comment"]
    if len(inner) != 1:
        return Feed("unseen", source=short(text_of(node)))
    return output_of(an, inner[0], NO_FEED)


def _stdout_to_file(r: Node) -> bool:
    if r.type != "file_redirect":
        return False
    op = next((c.type for c in r.children if not c.is_named), "")
    fd = r.child_by_field_name("descriptor")
    return op in (">", ">>", ">|", "&>", "&>>") and (fd is None or text_of(fd) == "1")


def _input(an: Analyzer, redirects: list[Node], feed: Feed) -> Feed:
    out = feed
    for r in redirects:
        got = an._input(r)
        if got is not None:
            out = got
    return out


def _command_output(an: Analyzer, node: Node, feed: Feed) -> Feed:
    argv: list[str] = []
    redirects: list[Node] = []
    for c in node.named_children:
        if c.type in ("file_redirect", "heredoc_redirect", "herestring_redirect"):
            redirects.append(c)
            continue
        if c.type in ("variable_assignment", "comment"):
            continue
        nodes = c.named_children if c.type == "command_name" else [c]
        for n in nodes:
            for w in words(n, an.vars.get):
                if w.dynamic:
                    return Feed("unseen", source=short(text_of(node)))
                argv.append(w.value)
    if any(_stdout_to_file(r) for r in redirects):
        return Feed("data", b"")
    feed = _input(an, redirects, feed)
    if not argv:
        return Feed("unseen", source=short(text_of(node)))
    producer = _PRODUCERS.get(argv[0].rsplit("/", 1)[-1])
    got = producer(argv[1:], feed) if producer is not None else None
    if got is None:
        return Feed("unseen", source=short(text_of(node)))
    return got if isinstance(got, Feed) else Feed("data", got[:MAX_DECODED])


# ---------------------------------------------------------------- producers

def _echo(args: list[str], feed: Feed) -> bytes | None:
    newline, escapes = True, False
    while args and re.fullmatch(r"-[neE]+", args[0]):
        flags = args.pop(0)[1:]
        newline = newline and "n" not in flags
        escapes = (escapes or "e" in flags) and not flags.endswith("E")
    text = " ".join(args)
    if escapes:
        text = _echo_escapes(text)
        if "\x00STOP" in text:
            return text.split("\x00STOP", 1)[0].encode("latin-1", "replace")
    return (text + ("\n" if newline else "")).encode("utf-8", "surrogateescape")


def _echo_escapes(text: str) -> str:
    text = text.replace("\\c", "\x00STOP")
    # echo -e spells octal as \0NNN; $'…' as \NNN
    text = re.sub(r"\\0([0-7]{1,3})", lambda m: "\\" + m.group(1).rjust(3, "0"), text)
    return ansi_c(text)


def _printf(args: list[str], feed: Feed) -> bytes | None:
    if args[:1] == ["--"]:
        args = args[1:]
    if not args or args[0].startswith("-v"):
        return None
    fmt, rest = args[0], args[1:]
    out: list[str] = []
    for _ in range(64):
        text, used = _format(fmt, rest)
        if text is None:
            return None
        out.append(text)
        rest = rest[used:]
        if not rest or used == 0:
            break
    return "".join(out).encode("utf-8", "surrogateescape")


_SPEC = re.compile(r"%([-+ #0]*\d*(?:\.\d+)?)([sbdicxXo%])")


def _format(fmt: str, args: list[str]) -> tuple[str | None, int]:
    """One pass of printf's format over its arguments (None: a conversion we do not model)."""
    out: list[str] = []
    used = 0
    pos = 0
    for m in _SPEC.finditer(fmt):
        chunk = fmt[pos:m.start()]
        if "%" in chunk:
            return None, used
        out.append(ansi_c(chunk))
        if m.group(2) == "%":
            out.append("%")
        else:
            out.append(_convert(m.group(2), args[used] if used < len(args) else ""))
            used += 1
        pos = m.end()
    tail = fmt[pos:]
    if "%" in tail:
        return None, used
    out.append(ansi_c(tail))
    return "".join(out), used


def _convert(conv: str, arg: str) -> str:
    if conv == "b":
        return _echo_escapes(arg)
    if conv == "c":
        return arg[:1]
    if conv in "dixXo":
        try:
            n = int(arg, 0) if arg else 0
        except ValueError:
            n = ord(arg[1]) if arg[:1] in "'\"" and len(arg) > 1 else 0
        return format(n, {"d": "d", "i": "d", "x": "x", "X": "X", "o": "o"}[conv])
    return arg


def _cat(args: list[str], feed: Feed) -> bytes | Feed | None:
    if not args or args == ["-"]:
        return feed if feed.kind != "none" else b""
    files = [a for a in args if not a.startswith("-") or a == "-"]
    if len(files) == 1 and len(args) == 1:
        return b"" if files[0] == "/dev/null" else Feed("file", path=files[0], piped=True)
    return None


def _known(feed: Feed) -> bytes | None:
    return feed.data if feed.kind == "data" else None


def _b64(args: list[str], feed: Feed) -> bytes | None:
    data = _known(feed)
    if data is None or not any(a in ("-d", "--decode", "-D", "-di", "-id") for a in args):
        return None
    try:
        return base64.b64decode(b"".join(data.split()) + b"==", validate=False)
    except (binascii.Error, ValueError):
        return None


def _b32(args: list[str], feed: Feed) -> bytes | None:
    data = _known(feed)
    if data is None or not any(a in ("-d", "--decode") for a in args):
        return None
    try:
        raw = b"".join(data.split())
        return base64.b32decode(raw + b"=" * (-len(raw) % 8))
    except (binascii.Error, ValueError):
        return None


def _openssl(args: list[str], feed: Feed) -> bytes | None:
    if args[:1] == ["base64"] and "-d" in args:
        return _b64(["-d"], feed)
    if args[:1] == ["enc"] and "-d" in args and ({"-a", "-base64"} & set(args)) and not any(
            a.startswith("-aes") or a.startswith("-des") or a == "-k" for a in args):
        return _b64(["-d"], feed)
    return None


def _xxd(args: list[str], feed: Feed) -> bytes | None:
    data = _known(feed)
    flags = {f for a in args if a.startswith("-") for f in a[1:]} | set(args)
    if data is None or "r" not in flags:
        return None
    text = data.decode("latin-1")
    if "p" in flags or "-ps" in args or "-plain" in args:
        hexes = re.sub(r"[^0-9A-Fa-f]", "", text)
    else:
        hexes = "".join(_xxd_row(line) for line in text.splitlines())
    try:
        return binascii.unhexlify(hexes[: len(hexes) // 2 * 2])
    except (binascii.Error, ValueError):
        return None


def _xxd_row(line: str) -> str:
    m = re.match(r"\s*[0-9A-Fa-f]+:\s?((?:[0-9A-Fa-f]{2,4}\s?)+)", line)
    if not m:
        return ""
    return re.sub(r"\s", "", m.group(1).split("  ")[0])


def _rev(args: list[str], feed: Feed) -> bytes | None:
    data = _known(feed)
    if data is None or args:
        return None
    text = data.decode("utf-8", "surrogateescape")
    lines = text.split("\n")
    return "\n".join(line[::-1] for line in lines).encode("utf-8", "surrogateescape")


def _tr_set(spec: str) -> str | None:
    spec = ansi_c(spec)
    classes = {"[:lower:]": "abcdefghijklmnopqrstuvwxyz", "[:upper:]": "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
               "[:digit:]": "0123456789", "[:space:]": " \t\n\r\f\v", "[:blank:]": " \t"}
    for name, chars in classes.items():
        spec = spec.replace(name, chars)
    if "[" in spec and re.search(r"\[.\*\d*\]|\[:", spec):
        return None
    out: list[str] = []
    i = 0
    while i < len(spec):
        if i + 2 < len(spec) and spec[i + 1] == "-":
            lo, hi = ord(spec[i]), ord(spec[i + 2])
            if hi < lo or hi - lo > 512:
                return None
            out.extend(chr(c) for c in range(lo, hi + 1))
            i += 3
        else:
            out.append(spec[i])
            i += 1
    return "".join(out)


def _tr(args: list[str], feed: Feed) -> bytes | None:
    data = _known(feed)
    if data is None:
        return None
    delete = args[:1] == ["-d"]
    sets = [_tr_set(a) for a in (args[1:] if delete else args)]
    if any(s is None for s in sets) or any(a.startswith("-") for a in (args[1:] if delete else args)):
        return None
    text = data.decode("utf-8", "surrogateescape")
    if delete and len(sets) == 1:
        return text.translate({ord(c): None for c in sets[0] or ""}).encode("utf-8", "surrogateescape")
    if len(sets) != 2 or not sets[0] or not sets[1]:
        return None
    src, dst = sets[0] or "", sets[1] or ""
    dst = dst + dst[-1] * max(0, len(src) - len(dst))
    return text.translate({ord(a): b for a, b in zip(src, dst, strict=False)}).encode("utf-8", "surrogateescape")


def _gunzip(args: list[str], feed: Feed) -> bytes | None:
    import gzip
    import lzma
    import zlib

    data = _known(feed)
    if data is None or [a for a in args if not a.startswith("-")]:
        return None
    try:
        if data[:2] == b"\x1f\x8b":
            return gzip.decompress(data)[:MAX_DECODED]
        return lzma.decompress(data)[:MAX_DECODED]
    except (OSError, EOFError, lzma.LZMAError, zlib.error):
        return None


def _decompress(args: list[str], feed: Feed) -> bytes | None:
    if not any(re.fullmatch(r"-[a-z]*d[a-z]*|--decompress|--stdout", a) for a in args):
        return None
    return _gunzip([a for a in args if a.startswith("-")], feed)


_PRODUCERS: dict[str, Callable[[list[str], Feed], bytes | Feed | None]] = {
    "echo": _echo,
    ":": lambda args, feed: b"",
    "true": lambda args, feed: b"",
    "printf": _printf,
    "cat": _cat,
    "base64": _b64,
    "base32": _b32,
    "openssl": _openssl,
    "xxd": _xxd,
    "rev": _rev,
    "tr": _tr,
    "zcat": _gunzip,
    "gunzip": _gunzip,
    "xzcat": _gunzip,
    "unxz": _gunzip,
    "gzip": _decompress,
    "xz": _decompress,
}
