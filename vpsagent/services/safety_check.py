"""`vpsagent safety check`: what the safety gate makes of commands, without running them.

For people writing policy files and for CI checks of runbooks: each command gets its class
(read-only, change, unknown, destructive), the decision the policy would take in a mode
(allow, ask, deny), the reason and the rule that decided, if any.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vpsagent.outcomes import Decision, Risk

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from vpsagent.settings import Settings

NO_SERVER = "the server"  # how verdicts name the server when no -s is given


@dataclass(frozen=True)
class CommandCheck:
    """One command's judgement (the JSON contract: command, risk, decision, reason, rule)."""

    command: str
    risk: Risk
    decision: Decision
    reason: str
    rule: str | None


@dataclass(frozen=True)
class SafetyCheck:
    results: list[CommandCheck]
    mode: str
    server: str | None = None
    tags: list[str] = field(default_factory=list)
    policy: str | None = None  # the policy file whose rules applied (None: there is none)


def check_commands(settings: Settings, commands: Sequence[str], *, mode: str = "default", server: str | None = None,
                   engine: Callable[[], Engine] | None = None) -> SafetyCheck:
    """Judge `commands` under `mode` with the policy file's rules for `server` and its tags.

    The inventory is read (through `engine`) only when a server is named, for its tags."""
    from vpsagent.safety.policy import Mode, check, load_policy

    policy = load_policy(settings.policy_file)
    tags: list[str] = []
    if server is not None:
        from vpsagent.services.servers import show_server

        if engine is None:
            raise ValueError("naming a server needs the inventory (engine)")
        tags = list(show_server(engine(), server).tags)
    results = []
    for command in commands:
        cls, verdict = check(policy, command, server=server or NO_SERVER, tags=tags, mode=Mode(mode))
        results.append(CommandCheck(command, cls.risk, verdict.decision, verdict.reason, verdict.rule))
    source = str(settings.policy_file) if settings.policy_file.exists() else None
    return SafetyCheck(results, mode, server, tags, source)
