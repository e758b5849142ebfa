"""The parser: tree-sitter-bash over every corpus command, words read as bash reads them,
and a parse error is never below unknown. Commands are only parsed; nothing is executed."""

from __future__ import annotations

import pytest

from tests.safety.independent_corpus import CASES
from tests.safety.safety_corpus import CORPUS
from vpsagent.outcomes import Risk
from vpsagent.safety import classify
from vpsagent.safety.parse import normalize, parse, words

EVERY_COMMAND = sorted({c for c, _ in CORPUS} | {c for _, c, _ in CASES})


def test_tree_sitter_parses_every_corpus_command_and_errors_are_unknown() -> None:
    errors = 0
    for command in EVERY_COMMAND:
        root = parse(command).root_node
        assert root.type == "program"
        if root.has_error:
            errors += 1
            assert classify(command).risk >= Risk.UNKNOWN, command
        normalize(command)  # never raises
    assert len(EVERY_COMMAND) > 2500
    assert errors < 60  # the corpora hold a few deliberate parse errors, not hundreds


def _words(text: str) -> list[str]:
    root = parse(f"echo {text}").root_node
    command = root.named_children[0]
    args = [c for c in command.named_children if c.type != "command_name"]
    return [w.value for a in args for w in words(a)]


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("'a b'", ["a b"]),
        ('"a\\"b\\$c"', ['a"b$c']),
        ("r''m", ["rm"]),
        ("\\rm", ["rm"]),
        ("foo\\ bar", ["foo bar"]),
        ("$'\\x72\\x6d'", ["rm"]),
        ("$'\\162\\155\\n'", ["rm\n"]),
        ("{a,b}/x", ["a/x", "b/x"]),
        ("'{a,b}'", ["{a,b}"]),
        ("$HOME/x", ["$HOME/x"]),
    ],
)
def test_words_are_read_as_bash_reads_them(text: str, values: list[str]) -> None:
    assert _words(text) == values


def test_normalize_spaces_words_and_operators() -> None:
    assert normalize("a|b  >x") == "a | b > x"
    assert normalize("apt-get update  &&  apt-get upgrade -y;") == "apt-get update && apt-get upgrade -y"
    assert normalize("echo 'a  b'") == "echo a b"  # whitespace is normalised everywhere, as before
