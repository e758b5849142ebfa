"""The classification corpus (tests/safety/safety_corpus.py): every row, and its shape.

Commands are only passed to classify(); nothing is executed.
"""

from __future__ import annotations

import collections

import pytest

from tests.safety.safety_corpus import (
    CHANGE_CASES,
    CORPUS,
    CREDENTIAL_READ_CASES,
    DESTRUCTIVE_CASES,
    ISSUE9_CHANGE_CASES,
    ISSUE9_DESTRUCTIVE_CASES,
    ISSUE9_READ_ONLY_CASES,
    ISSUE9_UNKNOWN_CASES,
    READ_ONLY_CASES,
    UNKNOWN_CASES,
)
from vpsagent.safety import Risk, classify

# Issue 4 §3 names these; they must stay in the corpus with exactly this class.
ISSUE_DESTRUCTIVE = [
    "rm -fr /",
    "/bin/rm --recursive --force /srv",
    "sudo env rm -rf /var/www",
    "find / -delete",
    "ls | xargs rm",
    "python3 -c 'import shutil; shutil.rmtree(\"/srv\")'",
    "dd if=/dev/zero of=/dev/sda",
    "mkfs.ext4 /dev/sdb1",
    'sh -c "rm -rf $1"',
    "$(echo rm) -rf /",
    'eval "rm -rf /"',
    "> /etc/passwd",
    "systemctl stop sshd",
    "iptables -F",
    "psql -c 'DROP DATABASE app'",
    "chmod -R 000 /",
    ":(){ :|:& };:",  # the fork bomb
]
ISSUE_READ_ONLY = [
    "df -h",
    "ps aux | grep nginx",
    "journalctl -u nginx --since today | tail -50",
    "cat /etc/os-release",
    "ss -tlnp",
    "systemctl status nginx",
    "ls -la /var/www",
    "grep -r error /var/log/nginx/ | head",
]


def _id(case: tuple[str, Risk]) -> str:
    return f"{case[1].value}:{case[0][:60]}"


@pytest.mark.parametrize(("command", "expected"), CORPUS, ids=[_id(c) for c in CORPUS])
def test_corpus_row(command: str, expected: Risk) -> None:
    cls = classify(command)
    assert cls.risk is expected, f"{command!r}: got {cls.risk} ({cls.summary}), want {expected}"
    # every verdict above read-only must say why, so the user and the model can act on it
    if expected is not Risk.READ_ONLY:
        assert cls.summary, f"{command!r}: {expected} without a reason"


def test_corpus_is_large_and_covers_every_class() -> None:
    assert len(CORPUS) >= 800
    counts = collections.Counter(risk for _, risk in CORPUS)
    assert counts[Risk.READ_ONLY] >= 200
    assert counts[Risk.CHANGE] >= 100
    assert counts[Risk.UNKNOWN] >= 30
    assert counts[Risk.DESTRUCTIVE] >= 300


@pytest.mark.parametrize(
    ("section", "risks"),
    [
        (CREDENTIAL_READ_CASES, {Risk.CHANGE}),
        (CHANGE_CASES, {Risk.CHANGE}),
        (UNKNOWN_CASES, {Risk.UNKNOWN}),
        (ISSUE9_DESTRUCTIVE_CASES, {Risk.DESTRUCTIVE}),
        (ISSUE9_READ_ONLY_CASES, {Risk.READ_ONLY}),
        (ISSUE9_CHANGE_CASES, {Risk.CHANGE}),
        (ISSUE9_UNKNOWN_CASES, {Risk.UNKNOWN}),
        (READ_ONLY_CASES, {Risk.READ_ONLY}),
        (DESTRUCTIVE_CASES, {Risk.DESTRUCTIVE}),
    ],
)
def test_corpus_sections_hold_what_they_say(section: list[tuple[str, Risk]], risks: set[Risk]) -> None:
    assert {r for _, r in section} <= risks


def test_corpus_has_no_duplicate_commands() -> None:
    dups = [c for c, n in collections.Counter(c for c, _ in CORPUS).items() if n > 1]
    assert dups == []


@pytest.mark.parametrize("command", ISSUE_DESTRUCTIVE)
def test_issue_destructive_examples_stay_in_the_corpus(command: str) -> None:
    table = dict(CORPUS)
    assert table.get(command) is Risk.DESTRUCTIVE


@pytest.mark.parametrize("command", ISSUE_READ_ONLY)
def test_issue_read_only_examples_stay_in_the_corpus(command: str) -> None:
    table = dict(CORPUS)
    assert table.get(command) is Risk.READ_ONLY


def test_credential_files_and_their_public_counterparts() -> None:
    """A private key needs approval to read; the .pub next to it does not; its metadata neither."""
    pairs = [
        ("cat ~/.ssh/id_rsa", "cat ~/.ssh/id_rsa.pub"),
        ("cat /root/.ssh/id_ed25519", "cat /root/.ssh/id_ed25519.pub"),
        ("cat /etc/ssh/ssh_host_rsa_key", "cat /etc/ssh/ssh_host_rsa_key.pub"),
        ("head -1 /etc/shadow", "stat /etc/shadow"),
    ]
    for private, public in pairs:
        assert classify(private).risk is Risk.CHANGE, private
        assert classify(public).risk is Risk.READ_ONLY, public
        assert "credential" in classify(private).summary
