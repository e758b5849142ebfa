"""docs/plans.md is the public contract of change plans: every key named, the example valid."""

from __future__ import annotations

import re
from pathlib import Path

DOC = (Path(__file__).resolve().parents[2] / "docs" / "plans.md").read_text(encoding="utf-8")


def test_every_key_is_documented() -> None:
    from vpsagent.plans import changes

    names = set(changes.PLAN_KEYS) | set(changes.STEP_KEYS) | set(changes.WRITE_KEYS) | set(changes.SELECTION_KEYS)
    assert sorted(n for n in names if f"`{n}`" not in DOC and f"{n}:" not in DOC) == []


def test_the_example_is_a_valid_plan() -> None:
    from vpsagent.plans.changes import validate_bytes

    block = re.search(r"## The format\n\n```yaml\n(.*?)```", DOC, re.DOTALL).group(1)
    plan, problems = validate_bytes(block.encode(), "example.yaml")
    assert problems == [] and plan is not None
    assert [s.name for s in plan.steps] == ["upgrade nginx", "reload nginx", "HTTP/2 off until the upstream fix"]
    assert plan.steps[2].write is not None and plan.steps[2].write.mode == 0o644
    assert len(plan.steps[1].verify.steps) == 2


def test_every_outcome_and_exit_code_is_documented() -> None:
    from vpsagent.outcomes import ApplyOutcome

    assert all(f"`{o.value}`" in DOC for o in ApplyOutcome)
    assert all(f"| {c} |" in DOC for c in (0, 1, 2, 4, 5))
