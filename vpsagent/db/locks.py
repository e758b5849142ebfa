"""Per-server locks in the database: one `--lock` holder per server at a time.

Two cron jobs that change the same server must not run at once, and they may start on
different machines, so the lock lives where they all meet: the `server_locks` table. A
lock is a lease: `acquire` writes one row per server (all or none, in one transaction),
a thread of the holder pushes `expires_at` forward while it works (`Lease`), and
`release` deletes the rows. A holder that dies without releasing does not block for
ever: its rows are taken over once their lease has run out, or at once when the holder
ran on this machine and its pid is gone.

run and test run use it through `services.fleet.Fleet.lock`; apply can do the same.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from vpsagent import errors
from vpsagent.db.types import utcnow

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

LEASE_S = 120.0  # a lease not renewed for this long is stale
RENEW_S = 30.0  # how often a holder renews its lease
POLL_S = 0.5  # how often --lock-wait looks again


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as a row says it."""

    server: str
    holder: str
    hostname: str
    pid: int | None
    created_at: datetime
    expires_at: datetime

    def stale(self, now: datetime) -> bool:
        """The lease ran out, or the holder was a process on this machine that is gone."""
        if self.expires_at <= now:
            return True
        if self.hostname != socket.gethostname() or self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, another user's
            return False
        return False


def _holders(conn: Connection, servers: Sequence[str]) -> list[Holder]:
    from sqlalchemy import select

    from vpsagent.db.tables import server_locks as t

    rows = conn.execute(select(t).where(t.c.server.in_(list(servers)))).mappings().all()
    return [Holder(r["server"], r["holder"], r["hostname"], r["pid"], r["created_at"], r["expires_at"]) for r in rows]


def try_acquire(engine: Engine, servers: Sequence[str], holder: str, *, lease_s: float = LEASE_S) -> Holder | None:
    """Take the lock on every server in one transaction; None when taken, else who holds one.

    Stale rows in the way are deleted (only if still the same holder's) in the same
    transaction, so two processes cannot both take over one stale lock.
    """
    from sqlalchemy import delete, insert
    from sqlalchemy.exc import IntegrityError

    from vpsagent.db.engine import transaction
    from vpsagent.db.tables import server_locks as t

    now = utcnow()
    rows = [{"server": s, "holder": holder[:500], "hostname": socket.gethostname()[:255], "pid": os.getpid(),
             "created_at": now, "expires_at": now + timedelta(seconds=lease_s)} for s in dict.fromkeys(servers)]
    try:
        with transaction(engine) as conn:
            for h in _holders(conn, servers):
                if not h.stale(now):
                    return h
                conn.execute(delete(t).where(t.c.server == h.server, t.c.holder == h.holder,
                                             t.c.expires_at == h.expires_at))
            conn.execute(insert(t), rows)
    except IntegrityError:  # another process inserted first, between our read and our write
        with transaction(engine) as conn:
            found = _holders(conn, servers)
        return found[0] if found else try_acquire(engine, servers, holder, lease_s=lease_s)
    return None


def renew(engine: Engine, servers: Sequence[str], holder: str, *, lease_s: float = LEASE_S) -> None:
    from sqlalchemy import update

    from vpsagent.db.engine import transaction
    from vpsagent.db.tables import server_locks as t

    with transaction(engine) as conn:
        conn.execute(update(t).where(t.c.server.in_(list(servers)), t.c.holder == holder[:500])
                     .values(expires_at=utcnow() + timedelta(seconds=lease_s)))


def release(engine: Engine, servers: Sequence[str], holder: str) -> None:
    from sqlalchemy import delete

    from vpsagent.db.engine import transaction
    from vpsagent.db.tables import server_locks as t

    with transaction(engine) as conn:
        conn.execute(delete(t).where(t.c.server.in_(list(servers)), t.c.holder == holder[:500]))


def busy(h: Holder, waited: float | None) -> errors.Busy:
    since = f"{h.created_at:%Y-%m-%d %H:%M:%S} UTC"
    return errors.Busy(
        f"{h.server} is locked by {h.holder} since {since}" + (f"; waited {waited:g}s" if waited else ""),
        hint="try again later, or wait for it with --lock-wait 60s",
        data={"server": h.server, "holder": h.holder, "since": h.created_at.isoformat()},
    )


class Lease:
    """The lock on `servers`, held from `acquire` until `release`, renewed meanwhile."""

    def __init__(self, engine: Engine, servers: Sequence[str], holder: str, *, lease_s: float = LEASE_S,
                 renew_s: float = RENEW_S) -> None:
        self.engine, self.servers, self.holder = engine, list(dict.fromkeys(servers)), holder
        self.lease_s, self.renew_s = lease_s, renew_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self, wait_s: float | None = None) -> None:
        """Take it now, or poll for up to `wait_s`; errors.Busy (exit 75) naming the holder."""
        deadline = time.monotonic() + (wait_s or 0.0)
        while True:
            h = try_acquire(self.engine, self.servers, self.holder, lease_s=self.lease_s)
            if h is None:
                break
            if time.monotonic() >= deadline:
                raise busy(h, wait_s)
            time.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())))
        self._thread = threading.Thread(target=self._renew, name="vpsagent-lock-lease", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.renew_s):
            try:
                renew(self.engine, self.servers, self.holder, lease_s=self.lease_s)
            except Exception:  # noqa: BLE001 - a missed renewal only shortens the lease; the next one may work
                pass

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
            release(self.engine, self.servers, self.holder)
