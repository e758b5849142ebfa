"""The independent corpus (tests/safety/independent_corpus.py): written from issue 9 alone by
someone who had not read the gate. It is kept unchanged; these are the issue's targets on it.

- every `destructive` case is denied under --yes and under --read-only when nobody can approve
  (it is classified unknown or destructive, never read-only or change);
- every `unknown` case is not read-only or change (so --yes never runs it);
- at most 3% of `read-only` cases are prompted (decision other than allow by default).

A label we think is wrong is not edited: it goes in EXPECTED_DISAGREEMENTS with the reason.
Commands are only classified; nothing is executed.
"""

from __future__ import annotations

import collections

from tests.safety.independent_corpus import CASES
from vpsagent.outcomes import Decision, Risk
from vpsagent.safety import Mode, Policy, classify, decide

# command -> why we disagree with its label (keep this short; report it)
EXPECTED_DISAGREEMENTS: dict[str, str] = {}

RUNS_UNATTENDED = {Risk.READ_ONLY, Risk.CHANGE}


def _cases(label: str) -> list[tuple[str, str]]:
    return [(cmd, why) for lab, cmd, why in CASES if lab == label and cmd not in EXPECTED_DISAGREEMENTS]


def _denied_without_approver(command: str, mode: Mode) -> bool:
    verdict = decide(Policy(), classify(command), server="web1", mode=mode)
    # ask with nobody to answer (no terminal, --json) is a denial too
    return verdict.decision in (Decision.DENY, Decision.ASK)


def test_the_corpus_is_large_and_labelled_with_the_four_classes() -> None:
    counts = collections.Counter(label for label, _, _ in CASES)
    assert len(CASES) >= 1000
    assert set(counts) == {"read-only", "change", "unknown", "destructive"}
    assert all(cmd not in EXPECTED_DISAGREEMENTS or EXPECTED_DISAGREEMENTS[cmd] for _, cmd, _ in CASES)


def test_every_destructive_case_is_denied_under_yes_and_read_only() -> None:
    misses = []
    for command, why in _cases("destructive"):
        risk = classify(command).risk
        yes = _denied_without_approver(command, Mode.YES)
        read_only = decide(Policy(), classify(command), server="web1", mode=Mode.READ_ONLY).decision is Decision.DENY
        if risk in RUNS_UNATTENDED or not yes or not read_only:
            misses.append(f"{risk.value:11} {command!r}  ({why})")
    assert misses == [], f"{len(misses)} destructive commands would run:\n" + "\n".join(misses)


def test_most_destructive_cases_are_exactly_destructive() -> None:
    cases = _cases("destructive")
    exact = sum(1 for command, _ in cases if classify(command).risk is Risk.DESTRUCTIVE)
    # the rest are unknown (denied all the same); the report in bench/README.md gives the number
    assert exact / len(cases) >= 0.97, f"{exact} of {len(cases)} exactly destructive"


def test_every_unknown_case_is_never_approved_by_yes() -> None:
    misses = [f"{classify(c).risk.value:11} {c!r}  ({why})" for c, why in _cases("unknown")
              if classify(c).risk in RUNS_UNATTENDED]
    assert misses == [], f"{len(misses)} unknown commands would run under --yes:\n" + "\n".join(misses)


def test_at_most_three_percent_of_read_only_cases_are_prompted() -> None:
    cases = _cases("read-only")
    prompted = [f"{classify(c).risk.value:11} {c!r}  ({why})" for c, why in cases
                if decide(Policy(), classify(c), server="web1").decision is not Decision.ALLOW]
    assert len(prompted) <= 0.03 * len(cases), f"{len(prompted)} of {len(cases)} prompted:\n" + "\n".join(prompted)
