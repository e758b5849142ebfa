"""`vpsagent history --limit 0 --csv/--json` memory and time at 10k and 100k rows (issue 10).

Fills a fresh SQLite audit log with N command_history rows, each with 8 KiB of output
excerpts (4 KiB stdout, 4 KiB stderr, as a chatty command leaves), then runs the whole
`vpsagent history` process with stdout to /dev/null and reports its wall time and peak
RSS (from /usr/bin/time). With `--old PATH` (a worktree of an earlier commit) the same
database is exported by that version too, side by side.

Run: python bench/history_export.py [--old PATH]   (prints Markdown rows for bench/README.md)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def fill(n: int) -> None:
    """N rows straight into command_history (the hash chain is not what is measured here)."""
    from vpsagent.db.engine import get_engine
    from vpsagent.db.tables import command_history as t
    from vpsagent.settings import load_settings

    engine = get_engine(load_settings())
    out, err = "o" * 4096, "e" * 4096
    now = datetime.now(UTC)
    with engine.begin() as c:
        have = c.execute(t.select().with_only_columns(t.c.id).order_by(t.c.id.desc()).limit(1)).scalar() or 0
        rows = [{"started_at": now, "finished_at": now, "status": "ok", "source": "run", "server": f"web{i % 50}",
                 "command": f"journalctl -u app -n 200 # {i}", "sudo": False, "os_user": "ops", "pid": 1,
                 "hostname": "bench", "exit_code": 0, "duration_ms": 12, "stdout_bytes": 4096,
                 "stderr_bytes": 4096, "stdout_excerpt": out, "stderr_excerpt": err, "hash_version": "v2",
                 "row_hash": "0" * 64, "done_hash": "0" * 64} for i in range(have, n)]
        for k in range(0, len(rows), 5000):
            c.execute(t.insert(), rows[k:k + 5000])


def measure(root: Path, fmt: str, env: dict[str, str]) -> tuple[float, int]:
    with open(os.devnull, "wb") as null:
        t0 = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-f", "RSS=%M", sys.executable, "-m", "vpsagent", "history",
                            "--limit", "0", fmt], stdout=null, stderr=subprocess.PIPE, env=dict(env, PYTHONPATH=str(root)),
                           cwd=root)
        dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(p.stderr.decode()[-2000:])
    return dt, int(p.stderr.decode().rsplit("RSS=", 1)[1].split()[0]) // 1024


def main() -> None:
    old = Path(sys.argv[sys.argv.index("--old") + 1]) if "--old" in sys.argv else None
    work = Path(tempfile.mkdtemp(prefix="vpsagent-bench-history-"))
    os.environ.update(VPSAGENT_HOME=str(work / "home"), VPSAGENT_SECRET="bench-secret-0123456789abcdef")
    os.environ.pop("DATABASE_URL", None)
    try:
        print("| version | rows | format | seconds | peak RSS (MiB) |\n|---|---:|---|---:|---:|")
        for n in (10_000, 100_000):
            fill(n)
            for fmt in ("--csv", "--json"):
                for label, root in (("this", ROOT), ("old", old)):
                    if root is None:
                        continue
                    dt, rss = measure(root, fmt, dict(os.environ))
                    print(f"| {label} | {n:,} | `{fmt}` | {dt:.2f} | {rss} |", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
