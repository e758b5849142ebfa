"""docs/testplans.md is the public contract: it names every key and its examples are valid."""

from __future__ import annotations

import re

from tests.plans.helpers import REPO

DOC = (REPO / "docs" / "testplans.md").read_text(encoding="utf-8")


def test_every_key_kind_and_matcher_is_documented():
    from vpsagent.plans import schema

    names = set(schema.PLAN_KEYS) | set(schema.COMMON_STEP_KEYS) | set(schema.RUN_ONLY_KEYS) \
        | set(schema.EXPECT_KEYS) | set(schema.MATCHER_KEYS) | set(schema.KINDS)
    for keys in schema.KIND_KEYS.values():
        names |= set(keys)
    missing = sorted(n for n in names if f"`{n}`" not in DOC and f"`expect.{n}`" not in DOC)
    assert missing == []


def test_every_report_format_and_exit_code_is_documented():
    from vpsagent.plans import reporters

    for fmt in reporters.FORMATS:
        assert f"--format {fmt}" in DOC or f"(`--format {fmt}`" in DOC
    for code in ("| 0 |", "| 1 |", "| 2 |", "| 5 |", "| 130 |"):
        assert code in DOC


def test_documented_json_fields_match_the_reporter(tmp_path):
    import json

    from tests.plans.helpers import local_run
    from vpsagent.plans import reporters

    block = re.search(r"### JSON.*?```json\n(.*?)```", DOC, re.DOTALL).group(1)
    documented = json.loads(block)
    real = reporters.json_report([local_run("name: x\nsteps:\n  - run: 'true'\n")], 0)
    assert set(documented) == set(real)
    assert set(documented["plans"][0]) == set(real["plans"][0])
    assert set(documented["plans"][0]["servers"][0]) == set(real["plans"][0]["servers"][0])
    assert set(documented["plans"][0]["servers"][0]["steps"][0]) == \
        set(real["plans"][0]["servers"][0]["steps"][0])


def test_the_opening_example_is_a_valid_plan():
    from vpsagent.plans.schema import validate_text

    block = re.search(r"```yaml\n(.*?)```", DOC, re.DOTALL).group(1)
    plan, problems = validate_text(block, "docs/testplans.md")
    assert problems == [] and plan is not None
    assert [s.kind for s in plan.steps] == ["run"] * 5 + ["http", "file", "port", "service", "package",
                                                          "process"]


def test_durations_as_documented():
    import pytest

    from vpsagent.plans.schema import parse_duration

    assert [parse_duration(x) for x in (30, 0.5, "500ms", "30s", "2m", "1h", "1d", "1m30s", "1.5s")] == \
        [30, 0.5, 0.5, 30, 120, 3600, 86400, 90, 1.5]
    for bad in ("10 minutes", "soon", "-1s", "0s", "", True, "1m 30s"):
        with pytest.raises(ValueError):
            parse_duration(bad)
