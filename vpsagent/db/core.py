"""SQLAlchemy Core tables for the hot path (`run`, `servers check`), read from the database.

Importing sqlmodel, pydantic and our SQLModel classes (db/models.py) costs ~0.18 s per
process, more than a whole fan-out's worth of SSH work on a fast network. The few tables
that `vpsagent run` touches (servers, vault, command_history) are therefore reflected
from the already-migrated database instead: the schema stays defined once, in
models.py and its Alembic revision, and this module only reads it back.

Reflected types need one adjustment: models.py stores datetimes through SQLModel's
UTCDateTime (UTC in, aware UTC out). A reflected DATETIME on SQLite would return naive
values and accept naive ones, so every date/time column is given `UTCDateTime` below,
which behaves the same way. JSON columns (servers.tags) reflect as JSON on both
SQLite and PostgreSQL and come back as Python lists.

The tables are reflected once per database URL per process, like the engines.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from vpsagent.db.engine import first_line
from vpsagent.errors import DatabaseError

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import Connection, Engine

HOT_TABLES = ("servers", "vault", "command_history")

_TABLES: dict[str, dict[str, Table]] = {}
_LOCK = threading.Lock()
_UTC_TYPE: Any = None


def _utc_type() -> Any:
    """An instance of a TypeDecorator equal in behaviour to sqlmodel's UTCDateTime."""
    global _UTC_TYPE
    if _UTC_TYPE is None:
        from sqlalchemy import types

        class UTCDateTime(types.TypeDecorator):  # type: ignore[type-arg]
            impl = types.DateTime
            cache_ok = True

            def __init__(self) -> None:
                super().__init__(timezone=True)

            def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
                if value is None:
                    return None
                if value.utcoffset() is None:
                    # the same refusal as SQLModel's: a naive value's zone is unknown
                    raise ValueError("datetime values must have timezone information")
                return value.astimezone(UTC)

            def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
                if value is None:
                    return None
                if value.utcoffset() is None:  # SQLite stores UTC without an offset
                    return value.replace(tzinfo=UTC)
                return value.astimezone(UTC)

        _UTC_TYPE = UTCDateTime()
    return _UTC_TYPE


def _reflect(engine: Engine) -> dict[str, Table]:
    from sqlalchemy import DateTime, MetaData, event
    from sqlalchemy.exc import DBAPIError, InvalidRequestError

    md = MetaData()

    @event.listens_for(md, "column_reflect")
    def _column(_inspector: Any, _table: Any, info: dict[str, Any]) -> None:
        if isinstance(info["type"], DateTime):
            info["type"] = _utc_type()

    from sqlalchemy import inspect

    try:
        with engine.connect() as conn:
            try:
                # resolve_fks=False: the tables they point at (users, conversations...) are not needed
                md.reflect(conn, only=list(HOT_TABLES), resolve_fks=False)
            except InvalidRequestError:  # a table is missing: not migrated, or not our database
                have = set(inspect(conn).get_table_names())
                missing = ", ".join(n for n in HOT_TABLES if n not in have)
                raise DatabaseError(f"the database has no table {missing}",
                                    hint="run `vpsagent db upgrade`") from None
            finally:
                conn.rollback()
    except DBAPIError as exc:
        raise DatabaseError(f"cannot read the database schema: {first_line(exc)}") from None
    return {name: md.tables[name] for name in HOT_TABLES}


def table(engine: Engine, name: str) -> Table:
    """The Core `Table` for `name` (one of HOT_TABLES) in `engine`'s database."""
    key = engine.url.render_as_string(hide_password=False)
    tables = _TABLES.get(key)
    if tables is None:
        with _LOCK:  # fan-out threads ask at once: reflect once
            tables = _TABLES.get(key)
            if tables is None:
                tables = _TABLES[key] = _reflect(engine)
    return tables[name]


def utcnow() -> datetime:
    return datetime.now(UTC)


@contextlib.contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction, committed when the block succeeds (like session_scope)."""
    from sqlalchemy.exc import OperationalError

    try:
        with engine.begin() as conn:
            yield conn
    except OperationalError as exc:
        raise DatabaseError(f"database error: {first_line(exc)}") from None
