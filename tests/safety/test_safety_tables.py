"""The program table (vpsagent/safety/programs.py) is data read by one function; these tests
hold it to its shape: every program that runs code or wraps a command has the rule that finds
that code or command, and the programs issue 9 names are all there."""

from __future__ import annotations

import re

import pytest

from vpsagent.outcomes import Risk
from vpsagent.safety import classify
from vpsagent.safety.programs import MUST_KNOW, PROGRAMS
from vpsagent.safety.table import Program, Wrap, problems


def test_the_table_has_no_problems() -> None:
    assert problems(PROGRAMS, MUST_KNOW) == []


def test_a_program_that_runs_code_without_a_rule_fails_the_check() -> None:
    assert problems({"frob": Program(runs_code=True)}) == ["frob: marked 'runs code' but has no handler that finds the code"]
    assert problems({}, frozenset({"frob"})) == ["frob: runs code or wraps a command, but is not in the table"]
    assert problems({"frob": Program()}, frozenset({"frob"})) == [
        "frob: runs code or wraps a command, but is not marked so"]
    nested = Program(subcommands={"exec": Program(runs_code=True)})
    assert problems({"frob": nested}) == ["frob exec: marked 'runs code' but has no handler that finds the code"]
    assert problems({"frob": Program(wraps=Wrap(skip=1))}) == []


WRAPPERS_OF_ISSUE_9 = ["parallel", "tmux", "screen", "script", "busybox", "toybox", "systemd-run", "systemd-inhibit",
                       "sg", "cpulimit", "numactl", "at", "batch", "expect", "docker", "kubectl", "ssh", "su", "runuser"]


@pytest.mark.parametrize("name", WRAPPERS_OF_ISSUE_9)
def test_every_wrapper_the_issue_names_is_looked_into(name: str) -> None:
    assert name in MUST_KNOW
    spec = PROGRAMS[name]
    assert spec.wraps is not None or spec.runs_code


@pytest.mark.parametrize("name", sorted(n for n in PROGRAMS if re.fullmatch(r"[A-Za-z0-9][\w.+-]*", n)))
def test_every_program_can_be_judged_bare_and_with_help(name: str) -> None:
    assert isinstance(classify(name).risk, Risk)
    assert classify(f"{name} --help").risk is Risk.READ_ONLY
