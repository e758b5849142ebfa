"""Database engines: URL normalisation, SQLite pragmas, schema migration on first use.

The fast path (schema already current) reads `alembic_version` with one query and
imports no Alembic; only a database that needs upgrading pays for it, under a lock
so two processes starting at once do not both migrate.
"""

from __future__ import annotations

import contextlib
import os
import stat
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
KNOWN_REVISIONS = ("0001", "0002", "0003", "0004", "0005", "0006")
PG_MIGRATION_LOCK = 0x76707361  # "vpsa": pg_advisory_lock key for migrations


def normalize_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _sqlite_path(url: str) -> Path | None:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    db = _sqlite_database(url)
    if u.get_backend_name() != "sqlite" or not db or db == ":memory:":
        return None
    return Path(db)


def _sqlite_database(url: str) -> str:
    """The database part of an SQLite URL, `file:` URIs (`?uri=true`) as the path they name."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    db = u.database or ""
    if u.query.get("uri") and db.startswith("file:"):
        db = db[len("file:"):].partition("?")[0].removeprefix("//")
    return db


def _in_memory(url: str) -> bool:
    """An SQLite URL whose database vanishes with the process (`sqlite://`, `sqlite:///`,
    `:memory:`, a memory URI): the audit log would accept rows and forget them."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    raw = u.database or ""
    db = _sqlite_database(url)
    return (u.get_backend_name() == "sqlite"
            and (not db.strip() or db == ":memory:" or "mode=memory" in raw or u.query.get("mode") == "memory"))


def _prepare_sqlite(url: str, default_dir: Path | None) -> None:
    """Refuse a database that would be lost or land somewhere unexpected, and create the
    file owner-only before SQLite does: its -wal and -shm files take the same mode.

    Only the default data directory is created (0700); an explicit path whose directory
    does not exist is a typo more often than a wish for a new tree.
    """
    if _in_memory(url):
        raise ConfigError(f"DATABASE_URL {mask_url(url)!r} is an in-memory SQLite database: the audit log "
                          "would be lost when the command ends",
                          hint="use sqlite:///PATH (a file) or postgresql://...")
    path = _sqlite_path(url)
    if path is None:
        return
    if not path.parent.is_dir():
        if default_dir is None or path.parent.resolve() != default_dir.resolve():
            raise ConfigError(f"{path.parent} does not exist (the directory of the SQLite database {path.name} "
                              "in DATABASE_URL)",
                              hint="create it first, or fix DATABASE_URL")
        try:
            path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise DatabaseError(f"cannot create the database directory {path.parent}: {exc.strerror}",
                                hint="check VPSAGENT_HOME / DATABASE_URL") from None
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError as exc:
        raise DatabaseError(f"cannot create the database {path}: {exc.strerror}",
                            hint="check VPSAGENT_HOME / DATABASE_URL") from None


def exposed_files(url: str) -> list[str]:
    """What of an SQLite database others can read: the directory, the file, -wal and -shm,
    one line each with the fix (empty when all are owner-only, or not SQLite)."""
    try:
        path = _sqlite_path(normalize_url(url))
    except Exception:  # noqa: BLE001 - an unparsable URL is reported where it is used
        return []
    if path is None:
        return []
    found = []
    for p in (path.parent, path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            mode = stat.S_IMODE(p.stat().st_mode)
        except OSError:
            continue
        if mode & 0o077:
            want = "700" if p.is_dir() else "600"
            found.append(f"{p} (mode {mode:04o}) is open to other users: chmod {want} {p}")
    return found


def database_exists(url: str) -> bool:
    """False for a SQLite file not created yet (asking would create it); True otherwise."""
    path = _sqlite_path(url)
    return path is None or path.exists()


def make_engine(url: str, *, default_dir: Path | None = None) -> Engine:
    """A new engine for `url` with our connection settings (no migration).

    `default_dir` is the data directory of the settings: the one directory an SQLite
    database may be created in when it does not exist yet.
    """
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
            _prepare_sqlite(url, default_dir)
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
        fd = os.open(path.with_name(path.name + ".migrate-lock"), os.O_WRONLY | os.O_CREAT, 0o600)
        with open(fd, "w") as fh:
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


def _engine_for(url: str, default_dir: Path | None = None) -> Engine:
    engine = _ENGINES.get(url)
    if engine is None:
        engine = make_engine(url, default_dir=default_dir)
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
        return make_engine(settings.database_url, default_dir=settings.data_dir)
    return _engine_for(normalize_url(settings.database_url), settings.data_dir)


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
