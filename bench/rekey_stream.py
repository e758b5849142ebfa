"""2 GiB through one SSHHost, past paramiko's 512 MiB key-renegotiation threshold (issue 10).

1. 32 × `head -c 64M /dev/zero` on one pooled connection at the real threshold: the
   seconds of each command, the slowest, the key exchanges done, and whether the
   connection was ever replaced;
2. the stall itself, made frequent: 40 × `head -c 20000` with the threshold lowered to
   64 KiB, once with vpsagent's own renegotiation between commands and once with
   paramiko's trigger put back (`--paramiko` behaviour, as before the fix), which stalls
   30 s each time it fires just before the server closes a finished command's channel.

One private sshd on 127.0.0.1, SQLite in a temp VPSAGENT_HOME.

Run: python bench/rekey_stream.py   (prints Markdown rows for bench/README.md)
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

MIB = 1024 * 1024


def stream(host: object, commands: int, size: str, *, paramiko_trigger: bool) -> tuple[list[float], int, bool]:
    """Per-command seconds, key exchanges seen, and whether the connection stayed the same."""
    host.connect()  # type: ignore[attr-defined]
    t = host._transport()  # type: ignore[attr-defined]
    if paramiko_trigger:  # as before the fix: paramiko renegotiates whenever its count is crossed
        t.packetizer.REKEY_BYTES = type(t.packetizer).REKEY_BYTES
        t.packetizer.REKEY_PACKETS = type(t.packetizer).REKEY_PACKETS
    seen = {t.H}
    times: list[float] = []
    for _ in range(commands):
        t0 = time.perf_counter()
        r = host.run(f"head -c {size} /dev/zero", capture=1024)  # type: ignore[attr-defined]
        times.append(time.perf_counter() - t0)
        if not r.ok:
            raise SystemExit(f"failed: {r.error}")
        seen.add(t.H)
    same = host._transport() is t  # type: ignore[attr-defined]
    host.close()  # type: ignore[attr-defined]
    return times, len(seen) - 1, same


def row(case: str, times: list[float], exchanges: int, same: bool) -> None:
    print(f"| {case} | {sum(times):.2f} | {statistics.median(times):.3f} | {max(times):.2f} | {exchanges} | "
          f"{'yes' if same else 'no (died, reconnected)'} |")


def main() -> None:
    import paramiko
    from ssh_engine import open_bench_host

    from tests.sshd import start_sshd

    work = Path(tempfile.mkdtemp(prefix="vpsagent-bench-rekey-"))
    os.environ.update(VPSAGENT_HOME=str(work / "home"), VPSAGENT_SECRET="bench-secret-0123456789abcdef")
    os.environ.pop("DATABASE_URL", None)
    sshd = start_sshd(work / "sshd", ["127.0.0.1"])
    try:
        host, _audit = open_bench_host(sshd)
        print("| case | total s | median s per command | slowest s | key exchanges | same connection |")
        print("|---|---:|---:|---:|---:|---|")
        row("vpsagent, 32 × 64 MiB = 2 GiB, threshold 512 MiB", *stream(host, 32, "64M", paramiko_trigger=False))
        paramiko.Packetizer.REKEY_BYTES = 64 * 1024
        row("vpsagent, 40 × 20 kB, threshold 64 KiB", *stream(host, 40, "20000", paramiko_trigger=False))
        row("paramiko's own trigger (before), 40 × 20 kB, threshold 64 KiB",
            *stream(host, 40, "20000", paramiko_trigger=True))
    finally:
        sshd.kill_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
