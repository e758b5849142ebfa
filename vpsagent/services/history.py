"""`vpsagent history`: reading the audit log (db/audit.py writes it)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, overload

from vpsagent import errors

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy import Select
    from sqlalchemy.engine import Engine, RowMapping

    from vpsagent.db.audit import VerifyResult

SOURCES = ("run", "ask", "test", "support", "deploy", "apply", "ssh", "cp", "sandbox")
STATUS_FILTERS = ("ok", "failed", "denied", "interrupted", "running", "timeout", "error", "connection_lost")
# `--status failed` means "did not succeed and was not denied or interrupted".
FAILED_GROUP = ("failed", "timeout", "error", "connection_lost")
DEFAULT_LIMIT = 50
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass
class HistoryEntry:
    id: int
    started_at: datetime
    finished_at: datetime | None
    status: str
    source: str
    server: str
    command: str
    sudo: bool
    user: str | None  # the OS account that ran vpsagent
    user_email: str | None  # the logged-in user (None: nobody was logged in)
    token_name: str | None  # the API token that user ran it with, if any
    exit_code: int | None
    duration_ms: int | None
    stdout_bytes: int | None
    stderr_bytes: int | None
    error: str | None
    decision: str | None
    conversation_id: int | None
    test_run_id: int | None
    # why it ran or was denied; for `apply`, the plan's content hash (`plan sha256:...`)
    decision_reason: str | None


@dataclass
class HistoryDetail(HistoryEntry):
    pid: int | None
    hostname: str | None
    stdout_sha256: str | None
    stderr_sha256: str | None
    stdout_excerpt: str | None
    stderr_excerpt: str | None
    row_hash: str | None
    outcome_unknown: bool = False  # completed by the reaper: how the command ended is not known


MAX_SINCE_S = 100 * 366 * 86400


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`1h`, `30m`, `2d`, `1w`, `90s`, or a date/time (`2026-11-01`, `2026-11-01T08:00`, UTC)."""
    now = now or datetime.now(UTC)
    t = text.strip()
    m = re.fullmatch(r"(\d+)\s*([smhdw])", t)
    if m:
        ago = int(m.group(1)) * _UNITS[m.group(2)]
        if ago > MAX_SINCE_S:  # before any row could exist, and past what a datetime can hold
            raise errors.InvalidInput(f"--since {text!r} is more than 100 years ago")
        return now - timedelta(seconds=ago)
    try:
        dt = datetime.fromisoformat(t)
    except ValueError:
        raise errors.InvalidInput(
            f"--since {text!r}: expected a duration like 1h, 30m, 2d or a date like 2026-11-01"
        ) from None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


@overload
def _aware(dt: datetime) -> datetime: ...
@overload
def _aware(dt: datetime | None) -> datetime | None: ...
def _aware(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def _entry(row: RowMapping) -> HistoryEntry:
    return HistoryEntry(
        id=row["id"], started_at=_aware(row["started_at"]), finished_at=_aware(row["finished_at"]),
        status=row["status"], source=row["source"], server=row["server"], command=row["command"],
        sudo=bool(row["sudo"]), user=row["os_user"], user_email=row["user_email"],
        token_name=row["token_name"], exit_code=row["exit_code"],
        duration_ms=row["duration_ms"], stdout_bytes=row["stdout_bytes"], stderr_bytes=row["stderr_bytes"],
        error=row["error"], decision=row["decision"], conversation_id=row["conversation_id"],
        test_run_id=row["test_run_id"], decision_reason=row["decision_reason"],
    )


def _detail(row: RowMapping) -> HistoryDetail:
    """An entry with everything else the row holds (`history show`)."""
    from vpsagent.db.audit import outcome_unknown

    return HistoryDetail(
        **vars(_entry(row)), pid=row["pid"], hostname=row["hostname"],
        stdout_sha256=row["stdout_sha256"], stderr_sha256=row["stderr_sha256"],
        stdout_excerpt=row["stdout_excerpt"], stderr_excerpt=row["stderr_excerpt"], row_hash=row["row_hash"],
        outcome_unknown=outcome_unknown(dict(row)),
    )


# The columns a HistoryEntry holds: listings select these and never the output excerpts
# and hashes (16 KiB a row), which only `history show` prints.
ENTRY_COLUMNS = ("id", "started_at", "finished_at", "status", "source", "server", "command", "sudo", "os_user",
                 "user_email", "token_name", "exit_code", "duration_ms", "stdout_bytes", "stderr_bytes", "error",
                 "decision", "decision_reason", "conversation_id", "test_run_id")
STREAM_BATCH = 500  # rows fetched at a time when streaming an export


def list_history(
    engine: Engine,
    *,
    server: str | None = None,
    source: str | None = None,
    since: str | None = None,
    status: str | None = None,
    grep: str | None = None,
    user: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[HistoryEntry]:
    """Newest first. Rows left running by a dead vpsagent process are completed as interrupted first."""
    return list(iter_history(engine, server=server, source=source, since=since, status=status, grep=grep,
                             user=user, limit=limit))


def iter_history(
    engine: Engine,
    *,
    server: str | None = None,
    source: str | None = None,
    since: str | None = None,
    status: str | None = None,
    grep: str | None = None,
    user: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Iterator[HistoryEntry]:
    """`list_history` as a stream: rows are fetched STREAM_BATCH at a time (a server-side
    cursor on PostgreSQL), so `--csv`/`--json` of 100k rows holds a batch, not the log.
    The filters are checked before the first row is asked for."""
    q = _query(server=server, source=source, since=since, status=status, grep=grep, user=user, limit=limit)
    from vpsagent.db.audit import AuditLog

    AuditLog(engine).reap_interrupted()
    return _stream(engine, q)


def _stream(engine: Engine, q: Select[tuple[object, ...]]) -> Iterator[HistoryEntry]:
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=STREAM_BATCH).execute(q)
        for row in result.mappings():
            yield _entry(row)
        conn.rollback()


def _query(*, server: str | None, source: str | None, since: str | None, status: str | None, grep: str | None,
           user: str | None, limit: int) -> Select[tuple[object, ...]]:
    from sqlalchemy import func, select

    from vpsagent.db.audit import history_table

    if source is not None and source not in SOURCES:
        raise errors.InvalidInput(f"--source {source!r}: expected one of {', '.join(SOURCES)}")
    if status is not None and status not in STATUS_FILTERS:
        raise errors.InvalidInput(f"--status {status!r}: expected one of {', '.join(STATUS_FILTERS)}")
    if limit < 0:
        raise errors.InvalidInput("--limit must be 0 (no limit) or more")
    since_dt = parse_since(since) if since else None

    t = history_table()
    q = select(*(t.c[name] for name in ENTRY_COLUMNS)).order_by(t.c.id.desc())
    if server:
        q = q.where(t.c.server == server)
    if source:
        q = q.where(t.c.source == source)
    if status == "failed":
        q = q.where(t.c.status.in_(FAILED_GROUP))
    elif status:
        q = q.where(t.c.status == status)
    if since_dt is not None:
        q = q.where(t.c.started_at >= since_dt)
    if user:
        q = q.where(func.lower(t.c.user_email) == user.strip().lower())
    if grep:
        pattern = "%" + grep.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        q = q.where(func.lower(t.c.command).like(pattern, escape="\\"))
    if limit:
        q = q.limit(limit)
    return q


def show_entry(engine: Engine, entry_id: int) -> HistoryDetail:
    from sqlalchemy import select

    from vpsagent.db.audit import history_table

    t = history_table()
    with engine.connect() as conn:
        row = conn.execute(select(t).where(t.c.id == entry_id)).mappings().first()
        conn.rollback()
    if row is None:
        raise errors.NotFound(f"no history entry {entry_id}", hint="`vpsagent history` lists them")
    return _detail(row)


def verify_history(engine: Engine, anchor: str | None = None) -> VerifyResult:
    """`anchor` is "ID:HASH" as an earlier verify printed it."""
    from vpsagent.db.audit import verify

    parsed: tuple[int, str] | None = None
    if anchor is not None:
        rid, _, digest = anchor.partition(":")
        if not rid.isdigit() or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise errors.InvalidInput(f"--anchor {anchor!r}: expected ID:HASH as `history verify` prints it")
        parsed = (int(rid), digest)
    return verify(engine, parsed)
