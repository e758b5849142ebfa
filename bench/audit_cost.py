"""What the audit log adds to each command, SQLite vs PostgreSQL (issue 10, item 19).

The audit work of one command is a row written before it starts and completed after it
ends (`AuditLog.start` + `AuditLog.finish`), measured here without the command, so the
number is the audit cost itself: the median per command over RUNS rounds of N commands,
one after another as `test run` steps are. PostgreSQL: $VPSAGENT_BENCH_PG_URL (default
postgresql://postgres@127.0.0.1:5432/test), in a schema of its own, dropped after.

Run: python bench/audit_cost.py [N] [RUNS]
"""

from __future__ import annotations

import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PG = os.environ.get("VPSAGENT_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def per_command_ms(url: str, n: int, runs: int) -> float:
    from vpsagent.db.audit import AuditLog
    from vpsagent.db.engine import dispose_engines, get_engine
    from vpsagent.remote.base import CommandResult
    from vpsagent.settings import load_settings

    engine = get_engine(load_settings(env=dict(os.environ, DATABASE_URL=url)))
    audit = AuditLog(engine, user="bench")
    result = CommandResult(host="web1", command="true", exit_code=0, stdout=b"ok\n", duration_s=0.001,
                           stdout_bytes=3)
    samples = []
    for _ in range(runs + 1):
        t0 = time.perf_counter()
        for i in range(n):
            row = audit.start(server="web1", command=f"echo {i}", source="test")
            audit.finish(row, result)
        samples.append((time.perf_counter() - t0) / n * 1000)
    dispose_engines()
    return statistics.median(samples[1:])  # the first round warms the pool


def round_trips(url: str) -> int:
    """Client→server round trips of one command's audit work on PostgreSQL, counted from
    libpq's protocol trace (each Sync or simple Query waits for the server's answer)."""
    from sqlalchemy import event

    from vpsagent.db.audit import AuditLog
    from vpsagent.db.engine import dispose_engines, get_engine
    from vpsagent.remote.base import CommandResult
    from vpsagent.settings import load_settings

    engine = get_engine(load_settings(env=dict(os.environ, DATABASE_URL=url)))
    audit = AuditLog(engine, user="bench")
    result = CommandResult(host="web1", command="true", exit_code=0, duration_s=0.001)
    audit.finish(audit.start(server="web1", command="warm", source="test"), result)
    trace = Path(tempfile.mkstemp(prefix="vpsagent-pgtrace-")[1])
    with trace.open("w") as fh:
        def on(dbapi_conn: object, *_a: object) -> None:
            dbapi_conn.pgconn.trace(fh.fileno())  # type: ignore[attr-defined]

        event.listen(engine.pool, "checkout", on)
        audit.finish(audit.start(server="web1", command="echo 1", source="test"), result)
        event.remove(engine.pool, "checkout", on)
    text = trace.read_text()
    trace.unlink()
    dispose_engines()
    return sum(1 for line in text.splitlines() if "\tF\t" in line and ("\tSync" in line or "\tQuery" in line))


def main() -> None:
    import sqlalchemy as sa

    from vpsagent.db.engine import normalize_url

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    work = Path(tempfile.mkdtemp(prefix="vpsagent-bench-audit-"))
    os.environ.update(VPSAGENT_HOME=str(work / "home"), VPSAGENT_SECRET="bench-secret-0123456789abcdef")
    schema = f"bench_{secrets.token_hex(4)}"
    admin = sa.create_engine(normalize_url(PG), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        sqlite = per_command_ms(f"sqlite:///{work / 'a.db'}", n, runs)
        sep = "&" if "?" in PG else "?"
        pg = per_command_ms(f"{PG}{sep}options={quote(f'-csearch_path={schema}')}", n, runs)
        pg_url = f"{PG}{sep}options={quote(f'-csearch_path={schema}')}"
        trips = round_trips(pg_url)
        print("| database | ms of audit per command (start + finish) | round trips |\n|---|---:|---:|")
        print(f"| SQLite | {sqlite:.2f} | |\n| PostgreSQL (127.0.0.1) | {pg:.2f} | {trips} |")
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
