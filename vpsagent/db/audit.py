"""The audit log: the only writer of `command_history`.

Every command vpsagent runs on a server gets a row *before* it starts (status
`running`) and is completed after it ends. If that first write fails the command does
not run (`services.fleet.Fleet.run`, the one audited run). A denied command is recorded
as such and never runs. The log records; it never runs anything itself.

Tamper evidence: rows form a hash chain. `row_hash` covers the facts known at start
plus the previous row's `row_hash` (`prev_hash`); `done_hash` covers the outcome plus
`row_hash`. `verify()` recomputes both for every row and names the first row that was
edited, or whose predecessor was deleted. Appending is serialised so the chain stays
linear under concurrent writers: SQLite's `BEGIN IMMEDIATE` (the engine's default
here), a transaction-scoped advisory lock on PostgreSQL.

Links that the database itself may clear (conversation, test run and user ids are
`ON DELETE SET NULL`) are not part of the hashes.

A row left `running` by a process that died (SIGKILL, power loss) is completed as
`interrupted` by `reap_interrupted()`, which `history` calls first; only rows written
from this machine can be checked (by pid). Such a row has no duration — the reaper is the
only writer that completes a row without one — and `outcome_unknown()` says so: whether
the command ran to its end is not known. Completing a row is retried for a few seconds
first (`COMPLETE_RETRIES`), so a database that was briefly away (a restart, a failover,
a lock) does not turn a command's real result into an unknown one.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol, TypeAlias, TypedDict, cast

from vpsagent import errors
from vpsagent.outcomes import CommandStatus

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from vpsagent.db.types import CoreTable

AUDIT_LOCK = 0x76706168  # "vpah": pg_advisory_xact_lock key for appending to the chain
EXCERPT_BYTES = 8192  # per stream: head and tail halves, the cut marked
# v1: rows written before logins existed; v2 also covers who (user email, token name).
HASH_VERSION = "v2"
GENESIS = ""  # prev_hash of the first row
STATUSES = frozenset(CommandStatus)
# Pauses between attempts to complete a row (about 7 s in all): long enough for a database
# restart or failover, short enough that a command's exit is not held up for long.
COMPLETE_RETRIES = (0.1, 0.3, 1.0, 2.0, 4.0)

# Column values as this module writes them into command_history.
Value: TypeAlias = str | int | bool | datetime | None
Values: TypeAlias = dict[str, Value]


class HistoryRow(TypedDict):
    """One command_history row as read back (the columns of tables.command_history)."""

    id: int
    started_at: datetime
    finished_at: datetime | None
    status: str
    source: str
    server: str
    command: str
    sudo: bool
    os_user: str | None
    user_id: int | None
    pid: int | None
    hostname: str | None
    conversation_id: int | None
    test_run_id: int | None
    decision: str | None
    decision_reason: str | None
    exit_code: int | None
    duration_ms: int | None
    stdout_bytes: int | None
    stderr_bytes: int | None
    stdout_excerpt: str | None
    stderr_excerpt: str | None
    stdout_sha256: str | None
    stderr_sha256: str | None
    error: str | None
    prev_hash: str | None
    row_hash: str | None
    done_hash: str | None


class Finished(Protocol):
    """What a finished command reports (remote.base.CommandResult has this shape)."""

    status: str
    exit_code: int | None
    duration_s: float
    stdout: bytes
    stderr: bytes
    stdout_bytes: int
    stderr_bytes: int
    stdout_sha256: str
    stderr_sha256: str
    error: str | None


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _ts(dt: object) -> str | None:
    """A timestamp column as hashed (rows are read back with their datetimes, or None)."""
    if dt is None:
        return None
    if not isinstance(dt, datetime):
        raise TypeError(f"a timestamp column holds {type(dt).__name__}, not a datetime")
    return _utc(dt).isoformat(timespec="microseconds")


def _now() -> datetime:
    # whole microseconds survive both SQLite and PostgreSQL unchanged, so hashes agree
    return datetime.now(UTC)


def _digest(parts: list[object]) -> str:
    data = json.dumps(parts, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def _getter(row: object) -> Callable[[str], object]:
    """Column values of a row given as a mapping, or as an object with attributes (ORM)."""
    return row.get if isinstance(row, dict) else lambda k: getattr(row, k)


def start_hash(row: object) -> str:
    g = _getter(row)
    version = g("hash_version") or "v1"
    who = [g("user_email"), g("token_name")] if version != "v1" else []
    return _digest([
        version, g("id"), _ts(g("started_at")), g("source"), g("server"), g("command"),
        bool(g("sudo")), g("os_user"), g("pid"), g("hostname"), g("decision"), g("decision_reason"),
        *who, g("prev_hash") or GENESIS,
    ])


def done_hash(row: object) -> str:
    g = _getter(row)
    return _digest([
        g("hash_version") or "v1", g("row_hash"), _ts(g("finished_at")), g("status"), g("exit_code"),
        g("duration_ms"), g("stdout_bytes"), g("stderr_bytes"), g("stdout_excerpt"),
        g("stderr_excerpt"), g("stdout_sha256"), g("stderr_sha256"), g("error"),
    ])


def excerpt(data: bytes, limit: int = EXCERPT_BYTES) -> str:
    """Head and tail of `data` as text that both databases can store (no NUL)."""
    if len(data) > limit:
        half = limit // 2
        cut = len(data) - 2 * half
        data = data[:half] + f"\n[... {cut} bytes cut ...]\n".encode() + data[-half:]
    return data.decode("utf-8", "replace").replace("\x00", "\ufffd")


def history_table() -> CoreTable:
    """The command_history table (Core, generated from the model: no ORM import)."""
    from vpsagent.db.tables import command_history

    return command_history


class WriteFailed(errors.DatabaseError):
    """The database did not take a write (gone, locked, restarting): worth trying again."""


def _db_error(exc: Exception, what: str) -> errors.DatabaseError:
    from vpsagent.db.engine import first_line

    return WriteFailed(f"{what}: {first_line(exc)}")


def outcome_unknown(row: object) -> bool:
    """The row was completed by `reap_interrupted`: the process that ran the command ended
    (or lost its database) before recording how it ended, so its result is not known."""
    g = _getter(row)
    return g("status") == CommandStatus.INTERRUPTED and g("duration_ms") is None and g("exit_code") is None


@dataclass(eq=False)
class _Write:
    """One queued audit write: a new row (_Append) or the completion of one (_Complete)."""

    table: CoreTable
    what: str  # how a failure is reported
    result: int | None = None  # an append's new row id
    error: BaseException | None = None
    done: bool = False

    def fail(self, exc: BaseException) -> None:
        self.error, self.done = exc, True


@dataclass(eq=False, kw_only=True)
class _Append(_Write):
    """A new row; `finish` too when it is complete at once (a command that was not run)."""

    values: Values
    finish: Values | None = None


@dataclass(eq=False, kw_only=True)
class _Complete(_Write):
    """The outcome of a row started earlier."""

    row_id: int
    finish: Values


class AuditLog:
    """Writes command_history rows. One per process is enough; it is thread-safe."""

    def __init__(self, engine: Engine, *, user: str | None = None, user_id: int | None = None,
                 user_email: str | None = None, token_name: str | None = None,
                 redact: Callable[[str], str] | None = None) -> None:
        self.engine = engine
        self.user = user or _os_user()
        self.user_id = user_id
        self.user_email = user_email
        self.token_name = token_name
        self.redact = redact
        self.pid = os.getpid()
        self.hostname = socket.gethostname()
        # Threads of one process take turns here rather than in SQLite's busy handler,
        # which sleeps in growing steps (a 50-server fan-out spent ~3x longer waiting).
        self._write_lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._queue: list[_Write] = []
        self._row_hashes: dict[int, str] = {}  # rows started here and not yet completed

    # -- writing ----------------------------------------------------------------------
    def _clean(self, text: str | None) -> str | None:
        if text is None:
            return None
        text = text.replace("\x00", "\ufffd")
        return self.redact(text) if self.redact is not None else text

    @staticmethod
    def _lock_chain(conn: Connection) -> None:
        from sqlalchemy import text

        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": AUDIT_LOCK})
        # SQLite: the engine opens every transaction with BEGIN IMMEDIATE, which already
        # holds the database's write lock; other writers wait on busy_timeout.

    # Group commit: every write is queued, and whichever thread holds the write lock writes
    # everything queued so far in one transaction. A 50-server fan-out otherwise spent
    # ~0.3 s in 100 back-to-back transactions, each waiting for the GIL between statements
    # while the SSH threads computed; the rows, their order and their hashes are the same.
    def _append(self, values: Values, *, finish: Values | None = None) -> int:
        t = history_table()
        row_id = self._submit(_Append(t, "cannot write the audit log", values=values, finish=finish))
        assert row_id is not None  # a write that did not fail has its row id
        return row_id

    def _submit(self, req: _Write) -> int | None:
        with self._queue_lock:
            self._queue.append(req)
        with self._write_lock:
            if not req.done:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                try:
                    self._write_batch(batch)
                finally:
                    # an interrupted leader hands the others' writes back to the next one
                    left = [r for r in batch if not r.done and r is not req]
                    if left:
                        with self._queue_lock:
                            self._queue[:0] = left
        if req.error is not None:
            raise req.error
        return req.result

    @contextlib.contextmanager
    def _transaction(self, batch: list[_Write]) -> Iterator[Connection]:
        """The batch's transaction. Completing one row is a single UPDATE: on PostgreSQL it
        runs in autocommit, one round trip instead of BEGIN, UPDATE, COMMIT."""
        if len(batch) == 1 and isinstance(batch[0], _Complete) and self.engine.dialect.name == "postgresql":
            with self.engine.connect() as conn:
                yield conn.execution_options(isolation_level="AUTOCOMMIT")
            return
        with self.engine.begin() as conn:
            yield conn

    def _write_batch(self, batch: list[_Write]) -> None:
        from sqlalchemy.exc import SQLAlchemyError

        try:
            with self._transaction(batch) as conn:
                hashes = self._write_in(conn, batch)
        except SQLAlchemyError as exc:
            if len(batch) == 1:
                batch[0].fail(_db_error(exc, batch[0].what))
                return
            # one bad row must not fail the others: each again, on its own
            for r in batch:
                r.done = False
                r.error = None
                self._write_batch([r])
            return
        # committed: remember the hashes of rows this process will complete later
        self._row_hashes.update(hashes)
        for r in batch:
            r.done = True
            if isinstance(r, _Complete):
                self._row_hashes.pop(r.row_id, None)

    def _write_in(self, conn: Connection, batch: list[_Write]) -> dict[int, str]:
        """Write `batch` in `conn`'s transaction; returns {row id: row hash} of rows left running."""
        prev: str | None = None  # the newest row's hash, read once the first append needs it
        started: dict[int, str] = {}
        if any(isinstance(r, _Append) for r in batch):
            self._lock_chain(conn)
        for r in batch:
            r.error = None
            if isinstance(r, _Append):
                prev = self._append_in(conn, r, prev)
                if r.finish is None:
                    assert r.result is not None  # _append_in set it
                    started[r.result] = prev
            elif isinstance(r, _Complete):
                self._complete_in(conn, r)
        return started

    @staticmethod
    def _append_in(conn: Connection, r: _Append, prev: str | None) -> str:
        """Insert a row chained to `prev` (read from the table when None); its row hash."""
        from sqlalchemy import insert, select, update

        t = r.table
        if conn.dialect.name == "postgresql":
            return AuditLog._append_pg(conn, r, prev)
        if prev is None:
            prev = conn.execute(select(t.c.row_hash).order_by(t.c.id.desc()).limit(1)).scalar() or GENESIS
        values = dict(r.values, prev_hash=prev)
        row_id = conn.execute(insert(t).values(**values).returning(t.c.id)).scalar_one()
        values["id"] = row_id
        row_hash = start_hash(values)
        upd: Values = {"row_hash": row_hash}
        if r.finish is not None:
            upd.update(r.finish)
            upd["done_hash"] = done_hash(dict(values, **upd))
        conn.execute(update(t).where(t.c.id == row_id).values(**upd))
        r.result = int(row_id)
        return row_hash

    @staticmethod
    def _append_pg(conn: Connection, r: _Append, prev: str | None) -> str:
        """The same row in two round trips instead of three: the id (from the table's
        sequence) and the previous hash in one query — under the chain lock, so ids stay
        in chain order — then one INSERT that already holds its hashes."""
        from sqlalchemy import func, insert, select

        t = r.table
        q = select(func.nextval(func.pg_get_serial_sequence(t.name, "id")))
        if prev is None:
            q = q.add_columns(select(t.c.row_hash).order_by(t.c.id.desc()).limit(1).scalar_subquery())
        got = conn.execute(q).one()
        if prev is None:
            prev = got[1] or GENESIS
        values = dict(r.values, id=int(got[0]), prev_hash=prev)
        row_hash = start_hash(values)
        values["row_hash"] = row_hash
        if r.finish is not None:
            values.update(r.finish)
            values["done_hash"] = done_hash(values)
        conn.execute(insert(t).values(**values))
        r.result = int(got[0])
        return row_hash

    def _complete_in(self, conn: Connection, r: _Complete) -> None:
        from sqlalchemy import select, update

        t = r.table
        # rows started here use this version; one another process started says its own
        row_hash, version = self._row_hashes.get(r.row_id), HASH_VERSION
        if row_hash is None:  # a row this process did not start (reap_interrupted)
            found = conn.execute(select(t.c.row_hash, t.c.hash_version).where(t.c.id == r.row_id)).first()
            if found is None or found[0] is None:
                r.error = errors.DatabaseError(f"audit row {r.row_id} does not exist")
                return
            row_hash, version = found[0], found[1]
        finish = dict(r.finish, row_hash=row_hash, hash_version=version)
        finish["done_hash"] = done_hash(finish)
        del finish["row_hash"], finish["hash_version"]
        if not conn.execute(update(t).where(t.c.id == r.row_id).values(**finish)).rowcount:
            r.error = errors.DatabaseError(f"audit row {r.row_id} does not exist")
            return
        r.result = None

    def _base(self, *, server: str, command: str, source: str, sudo: bool, conversation_id: int | None,
              test_run_id: int | None, decision: str | None, reason: str | None, status: str) -> Values:
        return {
            "started_at": _now(), "status": status, "source": source, "server": server,
            "command": self._clean(command), "sudo": bool(sudo), "os_user": self.user,
            "user_id": self.user_id, "user_email": self.user_email, "token_name": self.token_name,
            "hash_version": HASH_VERSION, "pid": self.pid, "hostname": self.hostname,
            "conversation_id": conversation_id, "test_run_id": test_run_id, "decision": decision,
            "decision_reason": self._clean(reason),
        }

    def start(self, *, server: str, command: str, source: str, sudo: bool = False,
              conversation_id: int | None = None, test_run_id: int | None = None,
              decision: str | None = None, decision_reason: str | None = None) -> int:
        """Write the row for a command about to run; returns its id. Raises DatabaseError."""
        return self._append(self._base(
            server=server, command=command, source=source, sudo=sudo, conversation_id=conversation_id,
            test_run_id=test_run_id, decision=decision, reason=decision_reason, status="running"))

    def record_decision(self, *, server: str | None = None, command: str, source: str, decision: str,
                        reason: str | None, conversation_id: int | None = None,
                        test_run_id: int | None = None, host: str | None = None,
                        rule: str | None = None) -> int:
        """A command that was not run (denied, not approved): one completed row."""
        name = server if server is not None else host
        if name is None:
            raise TypeError("record_decision() needs server=")
        why = reason or ""
        if rule:
            why = f"{why} (rule: {rule})" if why else f"rule: {rule}"
        values = self._base(server=name, command=command, source=source, sudo=False,
                            conversation_id=conversation_id, test_run_id=test_run_id,
                            decision=decision, reason=why or None, status="denied")
        finish: Values = {"finished_at": values["started_at"], "status": "denied", "exit_code": None,
                  "duration_ms": 0, "stdout_bytes": 0, "stderr_bytes": 0, "stdout_excerpt": None,
                  "stderr_excerpt": None, "stdout_sha256": None, "stderr_sha256": None,
                  "error": self._clean(f"not run: {why}" if why else "not run")}
        return self._append(values, finish=finish)

    def _complete(self, row_id: int, finish: Values) -> None:
        """Complete a row, trying again while the database is away (see COMPLETE_RETRIES):
        given up, the row stays `running` and is later reaped with its outcome unknown."""
        what = f"cannot complete audit row {row_id}"
        for pause in (*COMPLETE_RETRIES, None):
            try:
                self._submit(_Complete(history_table(), what, row_id=row_id, finish=finish))
                return
            except WriteFailed:
                if pause is None:
                    raise
                time.sleep(pause)

    def finish(self, row_id: int, result: Finished) -> None:
        """Complete a row with what the command produced."""
        self._complete(row_id, {
            "finished_at": _now(),
            "status": result.status if result.status in STATUSES else "error",
            "exit_code": result.exit_code,
            "duration_ms": int(round(result.duration_s * 1000)),
            "stdout_bytes": result.stdout_bytes,
            "stderr_bytes": result.stderr_bytes,
            "stdout_excerpt": self._clean(excerpt(result.stdout)),
            "stderr_excerpt": self._clean(excerpt(result.stderr)),
            "stdout_sha256": result.stdout_sha256 or None,
            "stderr_sha256": result.stderr_sha256 or None,
            "error": self._clean(result.error),
        })

    def fail(self, row_id: int, status: str, error: str, *, duration_s: float | None = None) -> None:
        """Complete a row whose command never produced a result (unreachable, Ctrl-C, crash)."""
        self._complete(row_id, {
            "finished_at": _now(), "status": status if status in STATUSES else "error",
            "exit_code": None, "duration_ms": None if duration_s is None else int(round(duration_s * 1000)),
            "stdout_bytes": None, "stderr_bytes": None, "stdout_excerpt": None, "stderr_excerpt": None,
            "stdout_sha256": None, "stderr_sha256": None, "error": self._clean(error),
        })

    def reap_interrupted(self) -> list[int]:
        """Rows left `running` by a vpsagent process of this machine that is gone → interrupted."""
        from sqlalchemy import select

        t = history_table()
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.c.id, t.c.pid).where(t.c.status == "running", t.c.hostname == self.hostname)
            ).all()
            conn.rollback()
        reaped = []
        for row_id, pid in rows:
            if pid is None or pid == self.pid or _alive(pid):
                continue
            self.fail(row_id, "interrupted",
                      f"result unknown: the vpsagent process (pid {pid}) ended before recording how the command ended")
            reaped.append(row_id)
        return reaped


def _os_user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry (containers): record none
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- verification ---------------------------------------------------------------------

@dataclass
class VerifyResult:
    ok: bool
    checked: int
    first_bad_id: int | None = None
    problem: str | None = None
    # The newest row and its hash: recorded elsewhere (a CI log, a ticket), it lets a later
    # `verify --anchor ID:HASH` notice rows deleted from the end, which a chain alone cannot.
    head_id: int | None = None
    head_hash: str | None = None

    @property
    def anchor(self) -> str | None:
        return f"{self.head_id}:{self.head_hash}" if self.head_id is not None else None


def iter_rows(engine: Engine, batch: int = 1000) -> Iterator[HistoryRow]:
    from sqlalchemy import select

    t = history_table()
    last = 0
    while True:
        with engine.connect() as conn:
            rows = conn.execute(select(t).where(t.c.id > last).order_by(t.c.id).limit(batch)).mappings().all()
            conn.rollback()
        if not rows:
            return
        for r in rows:
            yield cast(HistoryRow, dict(r))  # SQLAlchemy's row mappings are untyped; the columns are these
        last = rows[-1]["id"]


def verify(engine: Engine, anchor: tuple[int, str] | None = None) -> VerifyResult:
    """Recompute the chain; the first row that does not match is named.

    With `anchor` (id, row hash) from an earlier verify, that row must still be there,
    unchanged, so rows deleted from the end of the log are detected too.
    """
    prev = GENESIS
    n = 0
    head_id: int | None = None
    anchor_seen = anchor is None
    for row in iter_rows(engine):
        n += 1
        rid = row["id"]
        if (row["prev_hash"] or GENESIS) != prev:
            return VerifyResult(False, n, rid, "the row before it was deleted or altered (chain broken)")
        row_hash = start_hash(row)
        if row["row_hash"] != row_hash:
            return VerifyResult(False, n, rid, "the row was edited (what, where, when or who changed)")
        if row["status"] != "running" or row["done_hash"] is not None:
            if row["done_hash"] != done_hash(row):
                return VerifyResult(False, n, rid, "the row's outcome was edited (status, exit code or output)")
        if anchor is not None and rid == anchor[0]:
            if row["row_hash"] != anchor[1]:
                return VerifyResult(False, n, rid, "the anchored row differs from the recorded anchor")
            anchor_seen = True
        prev = row_hash  # equal to row["row_hash"], as checked above
        head_id = rid
    if not anchor_seen:
        assert anchor is not None
        return VerifyResult(False, n, anchor[0], "the anchored row is gone: rows were deleted from the end "
                            "of the log", head_id, prev if head_id is not None else None)
    return VerifyResult(True, n, head_id=head_id, head_hash=prev if head_id is not None else None)
