"""Database engines: URL normalisation, SQLite pragmas, schema migration on first use.

The fast path (schema already current) reads `alembic_version` with one query and
imports no Alembic; only a database that needs upgrading pays for it, under a lock
so two processes starting at once do not both migrate.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from vpsagent.errors import ConfigError, DatabaseError, SchemaTooNew
from vpsagent.settings import Settings, mask_url

if TYPE_CHECKING:
    import sqlite3

    from alembic.config import Config
    from sqlalchemy.engine import Connection, Engine
    from sqlmodel import Session

# The newest revision this code knows, and every revision it can read. A test checks
# these against the Alembic scripts shipped in db/migrations/versions.
SCHEMA_HEAD = "0006"
KNOWN_REVISIONS = ("0001", "0002", "0003", "0004", "0006")
PG_MIGRATION_LOCK = 0x76707361  # "vpsa": pg_advisory_lock key for migrations


def normalize_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _sqlite_path(url: str) -> Path | None:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


def make_engine(url: str) -> Engine:
    """A new engine for `url` with our connection settings (no migration)."""
    from sqlalchemy import create_engine, event
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    url = normalize_url(url)
    try:
        backend = make_url(url).get_backend_name()
    except (ArgumentError, ValueError):
        raise ConfigError(f"DATABASE_URL {mask_url(url)!r} is not a database URL",
                          hint="use sqlite:///PATH or postgresql://user@host/db") from None
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(f"unsupported database {backend!r} in DATABASE_URL",
                          hint="use sqlite:///PATH or postgresql://user@host/db")
    try:
        if url.startswith("sqlite"):
            path = _sqlite_path(url)
            if path is not None:
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise DatabaseError(f"cannot create the database directory {path.parent}: {exc.strerror}",
                                        hint="check VPSAGENT_HOME / DATABASE_URL") from None
            engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

            @event.listens_for(engine, "connect")
            def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
                # Take transaction control from pysqlite so we can BEGIN IMMEDIATE: writers
                # then queue on busy_timeout instead of failing with "database is locked"
                # when a read transaction tries to upgrade to a write.
                dbapi_conn.isolation_level = None
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA busy_timeout=30000")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.close()

            @event.listens_for(engine, "begin")
            def _on_begin(conn: Connection) -> None:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

            return engine
        engine = create_engine(url, connect_args={"connect_timeout": 10} if url.startswith("postgresql") else {})
        _ping_when_idle(engine)
        return engine
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise DatabaseError(f"bad DATABASE_URL {mask_url(url)}: {exc}") from None


# A pooled connection idle for longer than this is pinged before use (the server may have
# restarted, a proxy may have dropped it). SQLAlchemy's pool_pre_ping pings on every
# checkout: on PostgreSQL that was two of the ~11 round trips each audited command made.
IDLE_PING_S = 10.0


def _ping_when_idle(engine: Engine) -> None:
    import time

    from sqlalchemy import event
    from sqlalchemy.exc import DisconnectionError
    from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

    @event.listens_for(engine.pool, "checkin")
    def _checked_in(_dbapi_conn: object, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _checked_out(dbapi_conn: object, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < IDLE_PING_S:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)  # type: ignore[arg-type]  # the DBAPI connection the pool hands out
        except Exception as exc:  # the pool replaces the connection and tries again
            raise DisconnectionError(str(exc)) from exc


def current_revision(conn: Connection) -> str | None:
    from sqlalchemy import inspect, text

    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _alembic_config(conn: Connection) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.attributes["connection"] = conn
    return cfg


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    from sqlalchemy import text

    if engine.dialect.name == "sqlite":
        import fcntl

        path = _sqlite_path(str(engine.url))
        if path is None:
            yield
            return
        with open(path.with_name(path.name + ".migrate-lock"), "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
    else:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": PG_MIGRATION_LOCK})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PG_MIGRATION_LOCK})
                conn.commit()


def _check_known(rev: str | None, url: str) -> None:
    if rev is not None and rev not in KNOWN_REVISIONS:
        raise SchemaTooNew(
            f"the database at {mask_url(url)} has schema revision {rev}, newer than this vpsagent knows",
            hint="upgrade vpsagent (pip install -U vpsagent)",
        )


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the schema to SCHEMA_HEAD. Returns (before, after)."""
    from alembic import command

    with _migration_lock(engine):
        with engine.connect() as conn:
            before = current_revision(conn)
            conn.rollback()
            _check_known(before, str(engine.url))
            if before != SCHEMA_HEAD:
                command.upgrade(_alembic_config(conn), "head")
                conn.commit()
    return before, SCHEMA_HEAD


def ensure_schema(engine: Engine) -> None:
    from sqlalchemy.exc import DBAPIError

    url = str(engine.url)
    try:
        with engine.connect() as conn:
            rev = current_revision(conn)
            conn.rollback()
        _check_known(rev, url)
        if rev != SCHEMA_HEAD:
            upgrade(engine)
    except DBAPIError as exc:
        raise DatabaseError(
            f"cannot use the database at {mask_url(url)}: {first_line(exc)}",
            hint="check DATABASE_URL; `vpsagent doctor` shows the settings in use",
        ) from None


def first_line(exc: BaseException) -> str:
    """The first line of a database error (the driver's own when SQLAlchemy wraps one)."""
    exc = getattr(exc, "orig", None) or exc
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# One engine per database URL per process, migrated once: every command of a process
# (and every thread of a fan-out) shares its connection pool.
_ENGINES: dict[str, Engine] = {}


def _engine_for(url: str) -> Engine:
    engine = _ENGINES.get(url)
    if engine is None:
        engine = make_engine(url)
        ensure_schema(engine)
        engine = _ENGINES.setdefault(url, engine)
    return engine


def dispose_engines() -> None:
    """Close every pooled connection (tests, and before a fork)."""
    while _ENGINES:
        _ENGINES.popitem()[1].dispose()


def get_engine(settings: Settings, *, migrate: bool = True) -> Engine:
    """The process's engine for the configured database, migrated on first use."""
    if not migrate:
        return make_engine(settings.database_url)
    return _engine_for(normalize_url(settings.database_url))


@contextlib.contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """A Core connection in a transaction, committed when the block succeeds (the hot path's
    `session_scope`: no ORM import)."""
    from sqlalchemy.exc import OperationalError

    try:
        with engine.begin() as conn:
            yield conn
    except OperationalError as exc:
        raise DatabaseError(f"database error: {first_line(exc)}") from None


@contextlib.contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits when the block succeeds and rolls back when it raises."""
    from sqlalchemy.exc import OperationalError
    from sqlmodel import Session

    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except OperationalError as exc:
            session.rollback()
            raise DatabaseError(f"database error: {first_line(exc)}") from None
        except BaseException:
            session.rollback()
            raise
