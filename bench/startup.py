"""Start-up time: `vpsagent --help` against `python -c "import click"`, side by side.

Target (issue 2): within 2x of importing click alone. Run: python bench/startup.py [RUNS]
Prints Markdown table rows for bench/README.md.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def timed(cmd: list[str], runs: int, env: dict[str, str]) -> list[float]:
    subprocess.run(cmd, capture_output=True, env=env, check=True)  # warm the page cache
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, capture_output=True, env=env, check=True)
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    env = dict(os.environ, VPSAGENT_HOME=tempfile.mkdtemp())
    exe = shutil.which("vpsagent") or sys.exit("install the package first (pip install -e .)")
    cases = {
        'python -c "import click"': [sys.executable, "-c", "import click"],
        "vpsagent --help": [exe, "--help"],
        "vpsagent servers list (SQLite)": [exe, "servers", "list"],
        'python -c "import anthropic, fabric, sqlmodel"': [sys.executable, "-c", "import anthropic, fabric, sqlmodel"],
    }
    results = {name: statistics.median(timed(cmd, runs, env)) for name, cmd in cases.items()}
    base = results['python -c "import click"']
    print(f"| command | median of {runs} (ms) | × import click |")
    print("|---|---:|---:|")
    for name, t in results.items():
        print(f"| `{name}` | {t * 1000:.0f} | {t / base:.2f} |")


if __name__ == "__main__":
    main()
