"""What server output may look like before it is stored, shown or sent to the model.

Server output is untrusted data that can hold credentials: our own stored ones (a
password echoed by a misconfigured script, a key file someone `cat`s) and anything
else secret-looking. `Redactor.redact` replaces them; `bound` keeps the head and the
tail of what is left with the cut marked and the full size stated, so one 5 MB log
never fills the context window; `inert` makes it harmless for a terminal.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from vpsagent.secret import Secret

MASK = "[REDACTED]"
DEFAULT_LIMIT = 32 * 1024  # bytes per tool result
# Stored credentials shorter than this are not searched for: a 3-character password
# would turn ordinary words into [REDACTED] and tell the model what it was.
MIN_SECRET_LEN = 6

_PRIVATE_KEY = re.compile(
    r"-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?)-----.*?(?:-----END \1-----|\Z)",
    re.S,
)
# key=value / key: value / "key": "value" forms whose value is a credential (the key name
# is kept so the model can still reason about the configuration).
_ASSIGNMENT = re.compile(
    r"""(?ix)
    (?P<key>\b[\w.-]*(?:password|passwd|pwd|passphrase|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|auth|key-data|certificate-data)[\w.-]*)
    (?P<kq>["']?)
    (?P<sep>\s*[:=]\s*)
    (?P<q>["']?)
    (?P<val>[^\s"',;&]{3,})
    """
)
# `key value` only where it is configuration, not prose: at the start of a line (redis
# `requirepass x`, `password x`), after a netrc `login`, or as a --flag. "Failed password
# for root" in auth.log must stay readable.
_KEY_VALUE = [
    re.compile(r"(?im)^(\s*(?:[\w.-]*pass(?:word|wd|phrase)?|requirepass|masterauth|secret|api[_-]?key|token)[ \t]+)([^\s=:]\S{2,})"),
    re.compile(r"(?i)(\blogin\s+\S+\s+password\s+)(\S+)"),
    re.compile(r"(?i)(--(?:password|passwd|pass|passphrase|token|api-key|secret)[ \t]+)([^\s-]\S*)"),
]
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]+):([^\s@/]+)@")
_BEARER = re.compile(r"(?i)\b(authorization:\s*(?:bearer|basic|token)\s+)(\S+)")
_TOKENS = [
    re.compile(r"\bsk-ant-[A-Za-z0-9_-]{10,}"),  # Anthropic
    re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9_-]{20,}"),  # OpenAI style
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"),  # GitHub
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{40,}"),
    re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}"),  # GitLab
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),  # AWS access key id
    re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),  # Slack
    re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),  # Google API key
    re.compile(r"\b[rs]k_(?:live|test)_[0-9A-Za-z]{16,}"),  # Stripe
    re.compile(r"\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}"),  # SendGrid
    re.compile(r"\bnpm_[A-Za-z0-9]{36}\b"),
    re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"),  # Hugging Face
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),  # JWT
]
# Where vpsagent cut output to a head and a tail (the capture, the audit excerpt, a step's
# excerpt, `bound`): a stored credential may straddle the cut, each half on its own side.
_CUT = re.compile(r"(\n\[\.\.\. [^\n\]]*\bcut\b[^\n\]]*\]\n)")
# The shortest piece of a stored credential next to a cut that is masked (shorter pieces
# are too common to mean anything).
MIN_PIECE_LEN = 4
# Values that look like a secret's key name but are obviously not a credential.
_HARMLESS_VALUES = {"true", "false", "none", "null", "yes", "no", "required", "optional", "prompt", MASK}


# C0 controls but tab and newline, DEL and the C1 controls: ESC and CSI start the sequences
# that recolour, retitle, redraw or (on some terminals) answer back into the input.
_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x00, 0x09), *range(0x0b, 0x20), *range(0x7f, 0xa0)]}


def inert(text: str | None) -> str:
    """Text from a server or the model, made inert for a terminal (control bytes shown as \\xNN).

    The one function every human-readable rendering of such text goes through (many-server
    `run`, `history`, test reports and progress, `ask`, `support`, `deploy`); only raw
    output the user asked for unchanged (one server's `run`) and data formats (--json,
    --csv, JUnit, JSON reports) skip it.
    """
    return (text or "").translate(_CONTROL)


def _secret_text(value: str | bytes | Secret) -> str:
    if isinstance(value, Secret):
        value = value.reveal()
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value


class Redactor:
    """Replaces stored credentials and secret-looking strings with `[REDACTED]`."""

    def __init__(self, secrets: Iterable[str | bytes | Secret] = ()):
        needles: set[str] = set()
        for s in secrets:
            if s is None:
                continue
            text = _secret_text(s).strip()
            if len(text) < MIN_SECRET_LEN:
                continue
            needles.add(text)
            # a stored private key may come back one line at a time (grep, head, a diff)
            for line in text.splitlines():
                line = line.strip()
                if len(line) >= 16 and not line.startswith("-----"):
                    needles.add(line)
        # longest first, so a whole key is replaced before its lines are
        self._needles = sorted(needles, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for needle in self._needles:
            if needle in text:
                text = text.replace(needle, MASK)
        if self._needles and "cut" in text:
            text = self._mask_pieces_at_cuts(text)
        text = _PRIVATE_KEY.sub(lambda m: f"-----BEGIN {m.group(1)}-----\n{MASK}\n-----END {m.group(1)}-----", text)
        text = _URL_CREDENTIALS.sub(lambda m: f"{m.group(1)}:{MASK}@", text)
        text = _BEARER.sub(lambda m: m.group(1) + MASK, text)
        for rx in _TOKENS:
            text = rx.sub(MASK, text)
        text = _ASSIGNMENT.sub(self._assignment, text)
        for rx in _KEY_VALUE:
            text = rx.sub(self._key_value, text)
        return text

    def _mask_pieces_at_cuts(self, text: str) -> str:
        """The start of a stored credential just before a cut, and its end just after one."""
        parts = _CUT.split(text)  # fragment, marker, fragment, marker, ...
        for i in range(0, len(parts), 2):
            if i + 1 < len(parts):
                parts[i] = self._mask_edge(parts[i], at_end=True)
            if i > 0:
                parts[i] = self._mask_edge(parts[i], at_end=False)
        return "".join(parts)

    def _mask_edge(self, frag: str, *, at_end: bool) -> str:
        longest = 0  # the longest piece of any credential at this edge
        for needle in self._needles:
            for k in range(min(len(needle) - 1, len(frag)), max(MIN_PIECE_LEN, longest + 1) - 1, -1):
                if frag.endswith(needle[:k]) if at_end else frag.startswith(needle[-k:]):
                    longest = k
                    break
        if not longest:
            return frag
        return frag[:-longest] + MASK if at_end else MASK + frag[longest:]

    @staticmethod
    def _harmless(val: str) -> bool:
        return val.lower() in _HARMLESS_VALUES or val.startswith(("$", "{", "<", "%"))

    @classmethod
    def _assignment(cls, m: re.Match[str]) -> str:
        if cls._harmless(m.group("val")):
            return m.group(0)
        return f"{m.group('key')}{m.group('kq')}{m.group('sep')}{m.group('q')}{MASK}"

    @classmethod
    def _key_value(cls, m: re.Match[str]) -> str:
        return m.group(0) if cls._harmless(m.group(2)) else m.group(1) + MASK

    def contains_secret(self, text: str) -> bool:
        return any(n in text for n in self._needles)


def bound(text: str, limit: int = DEFAULT_LIMIT, *, total: int | None = None) -> str:
    """Keep at most `limit` bytes of `text` (UTF-8): head and tail with the cut marked.

    `total` is the size of the original output when `text` is itself already a capture of
    something larger; the marker states it so the model knows what it did not see.
    """
    data = text.encode("utf-8")
    full = max(total or 0, len(data))
    if len(data) <= limit and full == len(data):
        return text
    if len(data) <= limit:
        return text + f"\n[output cut: {full} bytes in total, {len(data)} shown]"
    marker_room = 120
    keep = max(0, limit - marker_room)
    head_n = keep // 2
    tail_n = keep - head_n
    head = data[:head_n].decode("utf-8", "ignore")
    tail = data[len(data) - tail_n :].decode("utf-8", "ignore") if tail_n else ""
    cut = full - head_n - tail_n
    marker = f"\n[... {cut} bytes cut; {full} bytes in total, first {head_n} and last {tail_n} shown ...]\n"
    return head + marker + tail
