"""One vocabulary of outcomes, and the one place an outcome becomes an exit code.

Every part of vpsagent that reports what happened — a command on a server, a test step,
a plan on a server, a host-key check, the safety gate's judgement — uses these enums.
They are `StrEnum`s, so they compare equal to the strings stored in the database and
written in `--json`; code compares members, never prose. The renderer maps them to words.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from vpsagent.errors import ExitCode


class CommandStatus(StrEnum):
    """One command on one server: an audit row, a `run` result, an agent tool call."""

    RUNNING = "running"
    OK = "ok"  # ran and exited 0
    FAILED = "failed"  # ran and exited non-zero
    TIMEOUT = "timeout"  # stopped after its time limit
    CONNECTION_LOST = "connection_lost"  # the connection broke while it ran
    UNREACHABLE = "unreachable"  # never started: no connection, SSH auth or host key failed
    INTERRUPTED = "interrupted"  # Ctrl-C, a closed pipe, or the process died
    ERROR = "error"  # could not be run for another reason (the database, a bug)
    DENIED = "denied"  # the safety gate or the user said no; never ran
    SKIPPED = "skipped"  # not started (--max-fail reached, or interrupted first)


class StepStatus(StrEnum):
    """One step of a test plan on one server."""

    PASSED = "passed"
    FAILED = "failed"  # the check did not hold
    SKIPPED = "skipped"
    ERROR = "error"  # the step could not be checked (the connection broke, a bad capture)


class TargetStatus(StrEnum):
    """A whole plan (or deploy, or apply) on one server."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    UNREACHABLE = "unreachable"


class RunStatus(StrEnum):
    """A whole test run, deploy or apply, as stored."""

    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    INTERRUPTED = "interrupted"


class DeployOutcome(StrEnum):
    """A deploy (or rollback) on one server."""

    PLANNED = "planned"  # --dry-run: what would happen
    RUNNING = "running"
    DEPLOYED = "deployed"
    FAILED = "failed"  # failed before the switch: the live release never changed
    ROLLED_BACK = "rolled_back"  # failed after the switch: the previous release is live again
    SKIPPED = "skipped"  # not started: a canary failed, --max-fail was reached, or interrupted first
    UNREACHABLE = "unreachable"
    INTERRUPTED = "interrupted"


class ApplyOutcome(StrEnum):
    """How a change plan went on one server (`vpsagent apply`)."""

    PLANNED = "planned"  # --dry-run: what would run
    APPLIED = "applied"  # every step ran and every verify check passed
    FAILED = "failed"  # a step or a check failed; the server's completed steps were undone
    UNDO_FAILED = "undo_failed"  # ...and an undo failed too: look at this server
    SKIPPED = "skipped"  # untouched: an earlier server failed (or --max-fail was reached)
    UNREACHABLE = "unreachable"
    INTERRUPTED = "interrupted"


class CheckStatus(StrEnum):
    """`servers check`: can we reach the server and is it the one we pinned?"""

    OK = "ok"
    PINNED = "pinned"  # first contact: the host key was learnt and pinned
    REPLACED = "replaced"  # --update-host-key accepted a changed key
    UNREACHABLE = "unreachable"
    AUTH_FAILED = "auth_failed"
    HOST_KEY_MISMATCH = "host_key_mismatch"
    ERROR = "error"


class Risk(StrEnum):
    """What the safety gate makes of a command (docs/safety.md)."""

    READ_ONLY = "read-only"  # a known program with known-safe options only
    CHANGE = "change"  # a recognised, bounded change
    UNKNOWN = "unknown"  # not recognised: cannot be judged
    DESTRUCTIVE = "destructive"  # recognised loss of data, of the server, or of the way in

    @property
    def rank(self) -> int:
        return _RISK_ORDER[self]

    # Compared by risk, not alphabetically as str would.
    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Risk):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Risk):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Risk):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Risk):
            return NotImplemented
        return self.rank >= other.rank


_RISK_ORDER = {Risk.READ_ONLY: 0, Risk.CHANGE: 1, Risk.UNKNOWN: 2, Risk.DESTRUCTIVE: 3}


class Decision(StrEnum):
    ALLOW = "allow"
    ASK = "ask"
    DENY = "deny"


class DenyCause(StrEnum):
    """Why the gate did not run a command; the renderer says what would let it run."""

    DENY_RULE = "deny_rule"  # a policy rule denies it
    DESTRUCTIVE = "destructive"  # destructive, and no allow rule names it
    READ_ONLY_MODE = "read_only_mode"  # --read-only runs read-only commands only
    NO_APPROVER = "no_approver"  # needed approval and nobody could give it (no terminal, --json)
    DECLINED = "declined"  # the user answered no
    SANDBOX_REQUIRED = "sandbox_required"  # the policy requires a read-only sandbox the server lacks


# Which exit code an outcome asks for. Several outcomes at once: the most severe wins,
# in the order of SEVERITY (an interrupted run is 130 whatever else happened; a server
# that could not be reached is 5 even when another server's command failed).
_EXIT_OF: dict[str, ExitCode] = {
    "interrupted": ExitCode.INTERRUPTED,
    "unreachable": ExitCode.UNREACHABLE,
    "connection_lost": ExitCode.UNREACHABLE,
    "auth_failed": ExitCode.UNREACHABLE,
    "host_key_mismatch": ExitCode.UNREACHABLE,
    "denied": ExitCode.NEEDS_APPROVAL,
    "failed": ExitCode.FAILURE,
    "rolled_back": ExitCode.FAILURE,
    "undo_failed": ExitCode.FAILURE,
    "timeout": ExitCode.FAILURE,
    "error": ExitCode.FAILURE,
}
SEVERITY = (ExitCode.INTERRUPTED, ExitCode.UNREACHABLE, ExitCode.NEEDS_APPROVAL, ExitCode.FAILURE)


def exit_code_for(statuses: Iterable[str], *, interrupted: bool = False) -> int:
    """The exit code for a set of outcomes (any of the enums above): the most severe one."""
    codes = {_EXIT_OF[s] for s in statuses if s in _EXIT_OF}
    if interrupted:
        codes.add(ExitCode.INTERRUPTED)
    for code in SEVERITY:
        if code in codes:
            return int(code)
    return int(ExitCode.OK)
