"""A plan of 100 `run` steps on one server vs the same 100 commands through OpenSSH (issue 5).

Target: `vpsagent test run plan100.yaml -s bench` as a whole fresh process (start-up,
plan validation, database, key decryption, host-key check, connect, 100 commands,
100 audit rows, test_runs/test_steps, report) within 2× of the same 100 commands sent
one after another through an OpenSSH ControlMaster connection that is already open
(`ssh -o ControlPath=ctl host CMD` × 100). Also shown: the ControlMaster side including
its own connection set-up, and each side per command.

One private sshd on 127.0.0.1 (as in the test suite), SQLite in a temp VPSAGENT_HOME,
the client key stored encrypted, the host key pinned.

Run: python bench/test_plan_100.py [RUNS]   (prints a Markdown table for bench/README.md)
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STEPS = 100


def commands() -> list[str]:
    # small, distinct commands with a little output each, like real checks
    return [f"echo step {i}; test -d /tmp" for i in range(STEPS)]


def write_plan(path: Path) -> None:
    lines = ["name: plan100", "steps:"]
    for i, cmd in enumerate(commands()):
        lines += [f"  - name: step {i}", f"    run: '{cmd}'", f"    expect: {{stdout: 'step {i}'}}"]
    path.write_text("\n".join(lines) + "\n")


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, env=env)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{cmd[:4]} failed ({p.returncode}): {p.stderr.decode()[-2000:]}")
    return dt


def controlmaster_run(ssh: list[str], ctl: Path, *, include_setup: bool) -> float:
    """The 100 commands through one ControlMaster connection, one after another."""
    t0 = time.perf_counter()
    master = subprocess.Popen(ssh[:1] + ["-o", "ControlMaster=yes", "-o", f"ControlPath={ctl}", "-N"] + ssh[1:],
                              stdin=subprocess.DEVNULL)
    try:
        cm = ssh[:1] + ["-o", f"ControlPath={ctl}"] + ssh[1:]
        # wait until the master accepts clients (ssh -O check), as a script would
        while subprocess.run(cm[:1] + ["-o", f"ControlPath={ctl}", "-O", "check", "x"],
                             capture_output=True).returncode != 0:
            if master.poll() is not None:
                raise SystemExit("the ControlMaster connection failed")
            time.sleep(0.01)
        start = time.perf_counter()
        for i, cmd in enumerate(commands()):
            out = subprocess.run([*cm, cmd], stdin=subprocess.DEVNULL, capture_output=True, check=True).stdout
            assert out.startswith(f"step {i}".encode())
        end = time.perf_counter()
    finally:
        subprocess.run(["ssh", "-o", f"ControlPath={ctl}", "-O", "exit", "x"], capture_output=True)
        master.wait(timeout=10)
    return end - (t0 if include_setup else start)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    from tests.sshd import register_sshd, start_sshd

    work = Path(tempfile.mkdtemp(prefix="vpsagent-bench-plan100-"))
    env = dict(os.environ, VPSAGENT_HOME=str(work / "home"), VPSAGENT_SECRET="bench-secret-0123456789abcdef",
               TERM="dumb")
    env.pop("DATABASE_URL", None)
    os.environ.update(VPSAGENT_HOME=env["VPSAGENT_HOME"], VPSAGENT_SECRET=env["VPSAGENT_SECRET"])
    os.environ.pop("DATABASE_URL", None)
    sshd = start_sshd(work / "sshd", ["127.0.0.1"])
    try:
        from vpsagent.db.engine import get_engine
        from vpsagent.services.vault import get_keyring
        from vpsagent.settings import load_settings

        settings = load_settings()
        engine = get_engine(settings)
        register_sshd(engine, get_keyring(settings, engine, notify=lambda m: None), sshd, "bench")
        plan = work / "plan100.yaml"
        write_plan(plan)
        # this checkout's vpsagent, not whichever is first on PATH (compile it first where
        # PYTHONDONTWRITEBYTECODE is set: python -m compileall -q vpsagent)
        env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
        report = work / "report.json"
        cmd = [sys.executable, "-m", "vpsagent", "test", "run", str(plan), "-s", "bench", "--format", "json", "-o", str(report)]
        ssh = sshd.ssh_args()

        timed(cmd, env)  # warm the page cache and the database file
        vpsagent, in_steps, cm_open, cm_setup = [], [], [], []
        for r in range(runs):
            vpsagent.append(timed(cmd, env))
            doc = json.loads(report.read_text())
            assert doc["summary"]["passed"] == STEPS, doc["summary"]
            in_steps.append(sum(s["duration_s"] for s in doc["plans"][0]["servers"][0]["steps"]))
            cm_open.append(controlmaster_run(ssh, work / f"ctl{r}a", include_setup=False))
            cm_setup.append(controlmaster_run(ssh, work / f"ctl{r}b", include_setup=True))
        v, s = statistics.median(vpsagent), statistics.median(in_steps)
        o, c = statistics.median(cm_open), statistics.median(cm_setup)
        print(f"### {STEPS} `run` steps on one server (median of {runs})\n")
        print("| case | seconds | ms per command | × ControlMaster |\n|---|---:|---:|---:|")
        print(f"| OpenSSH ControlMaster, connection already open: `ssh -o ControlPath=… host CMD` × {STEPS} "
              f"| {o:.2f} | {o / STEPS * 1000:.1f} | 1.00 |")
        print(f"| OpenSSH ControlMaster including its connection set-up | {c:.2f} | {c / STEPS * 1000:.1f} | "
              f"{c / o:.2f} |")
        print(f"| `vpsagent test run plan100.yaml -s bench` (whole process) | {v:.2f} | {v / STEPS * 1000:.1f} | "
              f"{v / o:.2f} |")
        print(f"| …of which the {STEPS} steps themselves (sum of step durations, audited) | {s:.2f} | "
              f"{s / STEPS * 1000:.1f} | {s / o:.2f} |")
        print(f"\nTarget: whole process within 2× of the open ControlMaster — "
              f"{'**met**' if v <= 2 * o else '**not met**'} ({v / o:.2f}×).")
    finally:
        sshd.kill_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
