"""Classifying speed of the safety gate (issue 9: under 100 µs median per command).

    python bench/safety_classify.py [--old PATH] [--repeat N]

Times `classify()` on every command of both corpora (tests/safety/safety_corpus.py and
tests/safety/independent_corpus.py): each command `--repeat` times, its best time kept
(the machine is shared and noisy), then the median, p95 and mean over commands. Columns:

- new, cold: the tree-sitter gate with its per-process LRU cache bypassed (a first sight);
- new, cached: the same command again (the agent repeats commands: a dict lookup);
- tree-sitter parse only: `Parser.parse()` of the text, to show what the parser alone costs;
- old: the hand-written-lexer gate, from a checkout of the commit before it (`--old PATH`,
  e.g. `git worktree add /tmp/old 3a68e8b`), run in its own process on the same commands.

Nothing is executed: commands are only classified.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def commands() -> list[str]:
    from tests.safety.independent_corpus import CASES
    from tests.safety.safety_corpus import CORPUS

    return list(dict.fromkeys([c for c, _ in CORPUS] + [c for _, c, _ in CASES]))


def per_command(fn: Callable[[str], object], cmds: list[str], repeat: int) -> list[float]:
    """The best of `repeat` timings of fn(cmd), in µs, for each command."""
    out = []
    for c in cmds:
        best = float("inf")
        for _ in range(repeat):
            t = time.perf_counter()
            fn(c)
            best = min(best, time.perf_counter() - t)
        out.append(best * 1e6)
    return out


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {"median": statistics.median(ordered), "p95": ordered[int(0.95 * (len(ordered) - 1))],
            "mean": statistics.fmean(ordered)}


_OLD = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from vpsagent.safety.classify import classify
cmds = json.load(sys.stdin)
classify("df -h")
out = []
for c in cmds:
    best = float("inf")
    for _ in range(int(sys.argv[2])):
        t = time.perf_counter(); classify(c); best = min(best, time.perf_counter() - t)
    out.append(best * 1e6)
print(json.dumps(out))
"""


def old_gate(path: str, cmds: list[str], repeat: int) -> list[float]:
    r = subprocess.run([sys.executable, "-c", _OLD, path, str(repeat)], input=json.dumps(cmds), capture_output=True,
                       text=True, check=True)
    return list(json.loads(r.stdout))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", help="a checkout of the gate before tree-sitter (to compare in the same run)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    from vpsagent.safety.classify import _classify, classify
    from vpsagent.safety.parse import parse

    cmds = commands()
    classify("df -h")  # import tree-sitter and build the parser outside the timings
    rows = {
        "new, cold (cache bypassed)": per_command(lambda c: _classify(c, None), cmds, args.repeat),
        "new, cached (repeated command)": per_command(classify, cmds, args.repeat),
        "tree-sitter parse only": per_command(parse, cmds, args.repeat),
    }
    if args.old:
        rows["old gate (hand-written lexer)"] = old_gate(args.old, cmds, args.repeat)
    print(f"{len(cmds)} commands, best of {args.repeat} each, µs per command")
    print(f"{'':34} {'median':>8} {'p95':>8} {'mean':>8}")
    for name, times in rows.items():
        s = summary(times)
        print(f"{name:34} {s['median']:8.1f} {s['p95']:8.1f} {s['mean']:8.1f}")


if __name__ == "__main__":
    main()
