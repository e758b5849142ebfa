"""The safety gate: classify shell commands by parsing them, then apply the policy.

    from vpsagent.safety import classify, decide, load_policy, Mode
    verdict = decide(load_policy(settings.policy_file), classify("df -h"), server="web1")

Four classes (`vpsagent.outcomes.Risk`): read-only, change, unknown, destructive. See
docs/safety.md for what each mode and rule promises.
"""

from __future__ import annotations

from vpsagent.outcomes import Decision, DenyCause, Risk
from vpsagent.safety.classify import Classification, Part, classify, classify_write
from vpsagent.safety.policy import (
    Mode,
    Policy,
    RuleSet,
    Verdict,
    check,
    decide,
    load_policy,
    parse_policy,
)
from vpsagent.safety.scripts import ChainedSource, ReaderSource, ScriptSource, WrittenFiles

__all__ = [
    "ChainedSource",
    "Classification",
    "Decision",
    "DenyCause",
    "Mode",
    "Part",
    "Policy",
    "ReaderSource",
    "Risk",
    "RuleSet",
    "ScriptSource",
    "Verdict",
    "WrittenFiles",
    "check",
    "classify",
    "classify_write",
    "decide",
    "load_policy",
    "parse_policy",
]
