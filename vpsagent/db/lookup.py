"""Names for shell completion, read without SQLAlchemy.

A completion runs on every Tab press, so it must answer in a blink: importing SQLAlchemy
and the models alone costs more than the whole budget (bench/completion.py). This reads
the few columns it needs with the database's own driver — sqlite3 (read-only: a Tab never
creates or migrates a database) or plain psycopg — and any failure (no database yet, an
old schema, a server that does not answer) is simply no suggestions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote

# What each kind of name is, as SQL that both SQLite and PostgreSQL accept.
QUERIES = {
    "servers": "SELECT name FROM servers ORDER BY name",
    "tags": "SELECT tags FROM servers",
    "conversations": "SELECT id, title FROM conversations ORDER BY id DESC LIMIT 200",
}
CONNECT_TIMEOUT_S = 2


def _sqlite_path(url: str) -> Path | None:
    rest = url.split("://", 1)[1] if "://" in url else ""
    path = unquote(rest[1:].split("?", 1)[0]) if rest.startswith("/") else ""
    return Path(path) if path and path != ":memory:" else None


def _rows(database_url: str, sql: str) -> list[tuple[object, ...]]:
    if database_url.startswith("sqlite"):
        import sqlite3

        path = _sqlite_path(database_url)
        if path is None or not path.exists():
            return []
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=CONNECT_TIMEOUT_S)
        try:
            return list(conn.execute(sql).fetchall())
        finally:
            conn.close()
    if database_url.startswith(("postgresql", "postgres")):
        import psycopg

        url = "postgresql://" + database_url.split("://", 1)[1]
        with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S) as pg:
            return list(pg.execute(sql).fetchall())
    return []


def rows(database_url: str, kind: str) -> list[tuple[object, ...]]:
    """The rows behind one kind of name; [] when they cannot be read."""
    try:
        return _rows(database_url, QUERIES[kind])
    except Exception:  # noqa: BLE001 - a completion offers nothing rather than fail
        return []


def server_names(database_url: str) -> list[str]:
    return ["local", *(str(r[0]) for r in rows(database_url, "servers"))]


def _tags_of(value: object) -> Iterable[str]:
    if isinstance(value, str):  # SQLite keeps the JSON text
        try:
            value = json.loads(value)
        except ValueError:
            return []
    return [str(t) for t in value] if isinstance(value, list) else []


def tags(database_url: str) -> list[str]:
    return sorted({t for r in rows(database_url, "tags") for t in _tags_of(r[0])})


def conversations(database_url: str) -> list[tuple[str, str]]:
    """(id, title), newest first."""
    return [(str(r[0]), str(r[1] or "")) for r in rows(database_url, "conversations")]
