"""The safety gate: classify shell commands by parsing them, then apply the policy.

    from vpsagent.safety import classify, decide, load_policy, Mode
    verdict = decide(load_policy(settings.policy_file), classify("df -h"), server="web1")
"""

from __future__ import annotations

from vpsagent.safety.classify import Classification, Part, Risk, classify, classify_write
from vpsagent.safety.policy import (
    Decision,
    Mode,
    Policy,
    RuleSet,
    Verdict,
    check,
    decide,
    load_policy,
    parse_policy,
)

__all__ = [
    "Classification",
    "Decision",
    "Mode",
    "Part",
    "Policy",
    "Risk",
    "RuleSet",
    "Verdict",
    "check",
    "classify",
    "classify_write",
    "decide",
    "load_policy",
    "parse_policy",
]
