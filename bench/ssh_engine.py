"""The SSH engine side by side with OpenSSH and stock Fabric (issue 3):

1. per-command latency on an already open connection: vpsagent `SSHHost.run("true")`
   (and with the audit log around it) vs `ssh -S ctl host true` through an OpenSSH
   ControlMaster vs stock Fabric `Connection.run("true", hide=True)`;
2. output throughput: in-process transfer time of 16 / 50 / 200 MiB through
   `SSHHost.run`, and the whole `vpsagent run -s bench 'head -c N /dev/zero' > /dev/null`
   process with its peak RSS, vs `ssh host 'head -c N /dev/zero' > /dev/null`, and stock
   Fabric `run(hide=True)` on 1 and 4 MiB (it is quadratic; 16 MiB takes ~25 s).

One private sshd on 127.0.0.1 (as in the test suite), SQLite in a temp VPSAGENT_HOME.

Run: python bench/ssh_engine.py [RUNS]   (prints Markdown tables for bench/README.md)
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fabric import Connection

    from tests.sshd import SSHD
    from vpsagent.db.audit import AuditLog
    from vpsagent.remote.base import Host

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MIB = 1024 * 1024


def per_command(fn: Callable[[], object], n: int) -> float:
    fn()  # warm
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1000


def proc_time_rss(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one child process, stdout to /dev/null.

    The RSS comes from /usr/bin/time (a small parent): a child forked from this big
    benchmark process would report the parent's pages as its own peak.
    """
    with open(os.devnull, "wb") as null:
        t0 = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-f", "RSS=%M", *cmd], stdout=null, stderr=subprocess.PIPE, env=env)
        dt = time.perf_counter() - t0
    err = p.stderr.decode()
    if p.returncode != 0:
        raise SystemExit(f"{cmd} failed: {err[-1000:]}")
    return dt, int(err.rsplit("RSS=", 1)[1].split()[0])


def open_bench_host(sshd: SSHD) -> tuple[Host, AuditLog]:
    """The private sshd registered as `bench` in a fresh SQLite inventory, and its audit log."""
    from tests.sshd import register_sshd
    from vpsagent.db.audit import AuditLog
    from vpsagent.db.engine import get_engine
    from vpsagent.services.context import Context
    from vpsagent.services.fleet import open_host
    from vpsagent.settings import load_settings

    settings = load_settings()
    ctx = Context(settings, engine=get_engine(settings))
    register_sshd(ctx, sshd, "bench")
    return open_host(ctx, "bench"), AuditLog(ctx.engine)


def start_master(ssh: list[str], ctl: Path) -> subprocess.Popen[bytes]:
    """An OpenSSH ControlMaster on `ctl`, waited for (up to 5 s)."""
    master = subprocess.Popen(ssh[:1] + ["-o", "ControlMaster=yes", "-o", f"ControlPath={ctl}", "-N"] + ssh[1:],
                              stdin=subprocess.DEVNULL)
    for _ in range(100):
        if ctl.exists():
            break
        time.sleep(0.05)
    return master


def latency_table(runs: int, host: Host, audit: AuditLog, cm: list[str], fab: Connection) -> None:
    """Part 1: per-command latency on an open connection."""
    from vpsagent.services.fleet import run_audited

    lat: dict[str, list[float]] = {k: [] for k in ("vpsagent", "audited", "controlmaster", "fabric")}
    for _ in range(runs):
        lat["vpsagent"].append(per_command(lambda: host.run("true"), 200))
        lat["audited"].append(per_command(lambda: run_audited(audit, host, "true", source="run"), 200))
        lat["controlmaster"].append(per_command(
            lambda: subprocess.run([*cm, "true"], stdin=subprocess.DEVNULL, check=True), 50))
        lat["fabric"].append(per_command(lambda: fab.run("true", hide=True), 20))
    med = {k: statistics.median(v) for k, v in lat.items()}
    print(f"### Per-command latency on an open connection (ms, median of {runs})\n")
    print("| case | ms per command | × ControlMaster |\n|---|---:|---:|")
    names = {"controlmaster": "OpenSSH ControlMaster: `ssh -S ctl host true`",
             "vpsagent": "vpsagent `SSHHost.run(\"true\")`",
             "audited": "vpsagent, audited (`run_audited`: 2 SQLite writes around it)",
             "fabric": "stock Fabric `Connection.run(\"true\", hide=True)`"}
    for k in ("controlmaster", "vpsagent", "audited", "fabric"):
        print(f"| {names[k]} | {med[k]:.2f} | {med[k] / med['controlmaster']:.2f} |")


def in_process_rows(runs: int, host: Host) -> None:
    """Part 2a: transfer time through `SSHHost.run`, output counted and dropped."""
    import resource

    for mib in (16, 50, 200):
        def count(b: bytes, sink: list[int] = [0]) -> None:  # noqa: B006 - a counter
            sink[0] += len(b)

        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            r = host.run(f"head -c {mib * MIB} /dev/zero", on_stdout=count, capture=64 * 1024)
            times.append(time.perf_counter() - t0)
            assert r.ok and r.stdout_bytes == mib * MIB
        t = statistics.median(times)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"| vpsagent `SSHHost.run` in process (transfer only) | {mib} MiB | {t:.3f} | {mib / t:.0f} | "
              f"{rss / 1024:.0f} MiB (bench process, cumulative) |")


def whole_process_rows(runs: int, env: dict[str, str], ssh: list[str]) -> None:
    """Part 2b: the whole `vpsagent run` process against a new `ssh` process."""
    vp = shutil.which("vpsagent") or sys.exit("pip install -e . first")
    b = [proc_time_rss([vp, "run", "-s", "bench", "true"], env) for _ in range(runs)]
    print(f"| `vpsagent run -s bench true` whole process (baseline: start-up, connect, audit) | 0 | "
          f"{statistics.median(x[0] for x in b):.3f} | | {max(x[1] for x in b) / 1024:.0f} MiB |")
    for mib in (16, 50, 200):
        v = [proc_time_rss([vp, "run", "-s", "bench", f"head -c {mib * MIB} /dev/zero"], env) for _ in range(runs)]
        o = [proc_time_rss([*ssh, f"head -c {mib * MIB} /dev/zero"]) for _ in range(runs)]
        vt, vr = statistics.median(x[0] for x in v), max(x[1] for x in v)
        ot, orss = statistics.median(x[0] for x in o), max(x[1] for x in o)
        print(f"| `vpsagent run` whole process, to /dev/null | {mib} MiB | {vt:.3f} | {mib / vt:.0f} | {vr / 1024:.0f} MiB |")
        print(f"| `ssh host` whole process (new connection), to /dev/null | {mib} MiB | {ot:.3f} | {mib / ot:.0f} | {orss / 1024:.0f} MiB |")


def fabric_rows(runs: int, fab: Connection) -> None:
    """Part 2c: stock Fabric's capture (quadratic, so only 1 and 4 MiB)."""
    for mib in (1, 4):
        times = []
        for _ in range(max(1, runs // 2)):
            t0 = time.perf_counter()
            fab.run(f"head -c {mib * MIB} /dev/zero", hide=True)
            times.append(time.perf_counter() - t0)
        t = statistics.median(times)
        print(f"| stock Fabric `run(hide=True)` | {mib} MiB | {t:.3f} | {mib / t:.0f} | |")


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    from tests.sshd import start_sshd

    work = Path(tempfile.mkdtemp(prefix="vpsagent-bench-ssh-"))
    env = dict(os.environ, VPSAGENT_HOME=str(work / "home"), VPSAGENT_SECRET="bench-secret-0123456789abcdef")
    env.pop("DATABASE_URL", None)
    os.environ.update(VPSAGENT_HOME=env["VPSAGENT_HOME"], VPSAGENT_SECRET=env["VPSAGENT_SECRET"])
    os.environ.pop("DATABASE_URL", None)
    sshd = start_sshd(work / "sshd", ["127.0.0.1"])
    ctl = work / "ctl.sock"
    master = None
    try:
        host, audit = open_bench_host(sshd)
        ssh = sshd.ssh_args()
        master = start_master(ssh, ctl)
        cm = ssh[:1] + ["-o", f"ControlPath={ctl}"] + ssh[1:]

        from fabric import Connection

        fab = Connection(sshd.host, user=sshd.user, port=sshd.port,
                         connect_kwargs={"key_filename": str(sshd.client_key_path)})
        latency_table(runs, host, audit, cm, fab)
        print(f"\n### Output throughput (median of {runs})\n")
        print("| case | size | seconds | MiB/s | peak RSS |\n|---|---:|---:|---:|---:|")
        in_process_rows(runs, host)
        whole_process_rows(runs, env, ssh)
        fabric_rows(runs, fab)
        fab.close()
        host.close()
    finally:
        if master is not None:
            subprocess.run(["ssh", "-o", f"ControlPath={ctl}", "-O", "exit", "x"], capture_output=True)
            master.terminate()
        sshd.kill_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
