"""One error tree. Each class carries the exit code and a stable code string.

`cli.main` is the only place that turns these into exit codes and the one-line
`error: ...` message (or the JSON envelope), the way httpie maps ExitStatus.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1  # a test failed, a remote command failed, an internal problem
    USAGE = 2  # bad flag, invalid plan, unknown server, bad input
    NOT_ALLOWED = 3  # not logged in / not allowed
    NEEDS_APPROVAL = 4  # an action needed approval that was not given
    UNREACHABLE = 5  # server unreachable, SSH auth failed, host key mismatch
    AI_ERROR = 6  # the AI service failed after retries
    CREDENTIAL = 7  # wrong secret, tampered or corrupted credential record
    BUDGET = 8  # turns, tokens or cost budget exceeded
    TEMPFAIL = 75  # busy: another run holds the lock; try again later (sysexits EX_TEMPFAIL)
    INTERRUPTED = 130


class VpsAgentError(Exception):
    """Base class: a known failure with one clear line for the user."""

    exit_code: ExitCode = ExitCode.FAILURE
    code: str = "error"

    # `data` goes into the `--json` error envelope. `object`, not vpsagent.jsondata: this
    # module is the bottom layer and imports nothing of vpsagent.
    def __init__(self, message: str, *, hint: str | None = None,
                 data: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.data: dict[str, object] = data or {}

    def line(self) -> str:
        if not self.hint:
            return self.message
        message = self.message.rstrip(".") if not self.message.endswith("...") else self.message
        # `message (hint)`, unless either has parentheses of its own: never nested ones
        if "(" in message or "(" in self.hint:
            return f"{message}; {self.hint}"
        return f"{message} ({self.hint})"


class Failure(VpsAgentError):
    code = "failure"


class UsageError(VpsAgentError):
    exit_code = ExitCode.USAGE
    code = "usage"


class NotFound(UsageError):
    code = "not_found"


class AlreadyExists(UsageError):
    code = "already_exists"


class InvalidInput(UsageError):
    code = "invalid_input"


class ConfigError(UsageError):
    code = "config"


class DatabaseError(VpsAgentError):
    code = "database"


class SchemaTooNew(DatabaseError):
    code = "schema_too_new"


class NotLoggedIn(VpsAgentError):
    exit_code = ExitCode.NOT_ALLOWED
    code = "not_logged_in"


class NotAllowed(VpsAgentError):
    exit_code = ExitCode.NOT_ALLOWED
    code = "not_allowed"


class ApprovalRequired(VpsAgentError):
    exit_code = ExitCode.NEEDS_APPROVAL
    code = "approval_required"


class Unreachable(VpsAgentError):
    exit_code = ExitCode.UNREACHABLE
    code = "unreachable"


class SSHAuthFailed(Unreachable):
    code = "ssh_auth_failed"


class HostKeyMismatch(Unreachable):
    code = "host_key_mismatch"


class HostKeyUnknown(Unreachable):
    code = "host_key_unknown"


class ConnectionLost(Unreachable):
    code = "connection_lost"


class AIServiceError(VpsAgentError):
    exit_code = ExitCode.AI_ERROR
    code = "ai_service"


class CredentialError(VpsAgentError):
    exit_code = ExitCode.CREDENTIAL
    code = "credential"


class BudgetExceeded(VpsAgentError):
    exit_code = ExitCode.BUDGET
    code = "budget_exceeded"


class Busy(VpsAgentError):
    exit_code = ExitCode.TEMPFAIL
    code = "busy"


class Interrupted(VpsAgentError):
    exit_code = ExitCode.INTERRUPTED
    code = "interrupted"
