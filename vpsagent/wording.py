"""Small rules of English the output follows everywhere (`1 step`, `2 steps`)."""

from __future__ import annotations

# Words whose plural is not the word + "s".
_IRREGULAR = {"entry": "entries", "summary": "summaries", "body": "bodies"}


def plural(n: int, word: str, many: str | None = None) -> str:
    """`1 step`, `0 steps`, `3 entries`."""
    if n == 1:
        return f"{n} {word}"
    return f"{n} {many or _IRREGULAR.get(word) or word + 's'}"


def about(subject: str, text: str) -> str:
    """`text` for a line that already names `subject` first: its own leading `subject: `
    goes (`web1: unreachable: web1: refused` reads `web1: unreachable: refused`)."""
    prefix = f"{subject}: "
    return text[len(prefix):] if text.startswith(prefix) else text
