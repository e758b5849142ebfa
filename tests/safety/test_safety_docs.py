"""docs/safety.md says what the gate does; these tests hold it to that.

The example policy must parse, the decision table under it must match check(), and every
example in the class table must classify as its row says. Commands are only classified.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vpsagent.safety import Decision, Mode, Policy, Risk, check, classify, parse_policy

DOC = Path(__file__).resolve().parents[2] / "docs" / "safety.md"


def _doc() -> str:
    return DOC.read_text(encoding="utf-8")


def _yaml_blocks(text: str) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", text, re.S)


def _table_after(text: str, marker: str) -> list[list[str]]:
    """The rows of the first markdown table after `marker`, cells stripped, header skipped."""
    start = text.index(marker)
    rows: list[list[str]] = []
    started = False
    for line in text[start:].splitlines()[1:]:
        if line.startswith("|"):
            started = True
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            rows.append([c.replace("\\|", "|") for c in cells])
        elif started:
            break
    return rows[2:]  # without the header and its --- line


def _code(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


@pytest.fixture(scope="module")
def example_policy() -> Policy:
    blocks = _yaml_blocks(_doc())
    assert len(blocks) == 1, "docs/safety.md should hold exactly one example policy"
    return parse_policy(blocks[0], "docs/safety.md")


def test_example_policy_parses_with_every_section(example_policy: Policy) -> None:
    p = example_policy
    assert "systemctl restart nginx" in p.allow
    assert "curl * | bash" in p.deny
    assert set(p.servers) == {"web1", "db1"}
    assert set(p.tags) == {"prod", "staging"}
    assert p.servers["web1"].allow == ("rm -rf /srv/app/cache",)
    assert "./deploy.sh" in p.allow  # an exact rule for an unknown command


# how the doc's "server" column maps to a server name and its tags
_SERVERS = {
    "web1": ("web1", ()),
    "web2": ("web2", ()),
    "web2 (tag prod)": ("web2", ("prod",)),
    "db1": ("db1", ()),
    "staging host": ("stage1", ("staging",)),
    "any": ("web9", ()),
}


def test_decision_table_matches_the_example_policy(example_policy: Policy) -> None:
    rows = _table_after(_doc(), "With this file:")
    assert len(rows) >= 8
    for cell_cmd, cell_server, default, yes in rows:
        (command,) = _code(cell_cmd)
        server, tags = _SERVERS[cell_server]
        for mode, want in ((Mode.DEFAULT, default), (Mode.YES, yes.strip("`"))):
            _, v = check(example_policy, command, server=server, tags=tags, mode=mode)
            assert v.decision is Decision(want), f"{command!r} on {cell_server} ({mode}): {v.reason}"


def test_mode_table_matches_decide() -> None:
    rows = _table_after(_doc(), "## Modes")
    modes = {"default": Mode.DEFAULT, "`--yes`": Mode.YES, "`--read-only`": Mode.READ_ONLY}
    samples = {1: "df -h", 2: "systemctl restart nginx", 3: "./deploy.sh", 4: "rm -rf /srv"}
    words = {"runs": Decision.ALLOW, "asks": Decision.ASK, "denied": Decision.DENY}
    assert [r[0] for r in rows] == list(modes)
    for row in rows:
        mode = modes[row[0]]
        for col, command in samples.items():
            want = words[row[col].split()[0].strip(",")]
            _, v = check(Policy(), command, server="web1", mode=mode)
            assert v.decision is want, f"{row[0]} / {command}: {v.reason}"


def test_class_table_examples_classify_as_documented() -> None:
    rows = _table_after(_doc(), "## The four classes")
    classes = {"**read-only**": Risk.READ_ONLY, "**change**": Risk.CHANGE, "**unknown**": Risk.UNKNOWN,
               "**destructive**": Risk.DESTRUCTIVE}
    assert [r[0] for r in rows] == list(classes)
    checked = 0
    for name, _meaning, examples in rows:
        for command in _code(examples):
            if "…" in command or command.isupper():
                continue  # placeholders like `psql -c 'SELECT …'`
            assert classify(command).risk is classes[name], command
            checked += 1
    assert checked >= 50


def test_error_example_in_the_doc_is_the_real_message() -> None:
    text = _doc()
    m = re.search(r"`error: (\S+?):(\d+): (unknown key '(\w+)' in servers\.web1\s+\(expected allow, ask, deny or require_sandbox\))`", text)
    assert m, "the doc should show the real error for an unknown key"
    bad = "\n".join(["allow: []", "ask: []", "deny: []", "servers:", "  web1:", "    allow: [ok]", "    alow: [x]"])
    with pytest.raises(Exception) as info:
        parse_policy(bad, m.group(1))
    assert str(info.value) == f"{m.group(1)}:{m.group(2)}: {' '.join(m.group(3).split())}"
