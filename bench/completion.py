"""Completion speed (issue 11): a Tab after `vpsagent run -s` must answer within 150 ms.

Side by side, each a fresh process as the shell starts it: `python -c "import click"` (the
floor), the completion of server names (`_VPSAGENT_COMPLETE=bash_complete`, names read with
sqlite3), `vpsagent servers list` (the same names through SQLAlchemy, what a completion
would cost without db/lookup.py). The inventory holds 200 servers.

Run: PYTHONPATH=. python bench/completion.py [RUNS]   — prints Markdown rows for bench/README.md.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SERVERS = 200


def timed(cmd: list[str], runs: int, env: dict[str, str]) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system) of the child. On a shared,
    loaded machine the wall time mostly measures the queue for a core; CPU time does not."""
    subprocess.run(cmd, capture_output=True, env=env, check=True)  # warm the page cache
    wall, cpu = [], []
    for _ in range(runs):
        t = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(p.pid, 0)
        wall.append(time.perf_counter() - t)
        cpu.append(usage.ru_utime + usage.ru_stime)
        p.returncode = os.waitstatus_to_exitcode(status)
        assert p.returncode == 0, cmd
    return statistics.median(wall), statistics.median(cpu)


def _fill(env: dict[str, str]) -> None:
    """200 servers, added through the service (one process, not 200)."""
    code = ("from vpsagent.services.context import Context\n"
            "from vpsagent.services.servers import ServerSpec, add_server\n"
            "ctx = Context()\n"
            f"for i in range({SERVERS}):\n"
            "    add_server(ctx, ServerSpec(name=f'web{i:03d}', host='192.0.2.1', tags=['web', f'rack{i % 8}']))\n")
    subprocess.run([sys.executable, "-c", code], env=env, check=True)


def _cases(env: dict[str, str]) -> dict[str, tuple[list[str], dict[str, str]]]:
    vps = [sys.executable, "-m", "vpsagent"]
    tab = dict(env, _VPSAGENT_COMPLETE="bash_complete", COMP_WORDS="vpsagent run -s web1", COMP_CWORD="3")
    return {
        'python -c "pass"': ([sys.executable, "-c", "pass"], env),
        'python -c "import click"': ([sys.executable, "-c", "import click"], env),
        "Tab after `run -s web1` (SQLite, sqlite3)": (vps, tab),
        "`servers list` (SQLite, SQLAlchemy)": ([*vps, "servers", "list"], env),
    }


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    home = Path(tempfile.mkdtemp())
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(VPSAGENT_HOME=str(home), VPSAGENT_SECRET="bench-completion-secret")
    _fill(env)
    print(f"| {SERVERS} servers, median of {runs} | wall (ms) | CPU (ms) |")
    print("|---|---:|---:|")
    for name, (cmd, e) in _cases(env).items():
        wall, cpu = timed(cmd, runs, e)
        print(f"| {name} | {wall * 1000:.0f} | {cpu * 1000:.0f} |")


if __name__ == "__main__":
    main()
