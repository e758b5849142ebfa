"""`vpsagent support --no-ai` collection time (issue 13: one server <= 2 s, 20 servers <= 3 s
on loopback), side by side with the same snippets run over plain OpenSSH in the same run.

The servers are loopback addresses served by private sshd processes, as in the test suite.
Compared, each a whole process, fresh each run:

- vpsagent: `vpsagent support --no-ai -s srv01` and `--all` (SQLite, keys decrypted from
  the encrypted store, host keys verified, the collection as one command per server,
  findings computed and stored).
- OpenSSH, warm: the same collection script through a ControlMaster that is already open
  (one `ssh` per server, in parallel for 20), i.e. the transport alone.
- OpenSSH, one snippet per command: every collector as its own `ssh` command through the
  warm master, one after the other — what a hand-written loop over the snippets costs.

Run: python bench/support_collect.py [RUNS]
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.sshd import SSHD

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

N = 20


def timed(cmd: list[str], env: dict[str, str], *, shell: bool = False) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(cmd if not shell else " ".join(cmd), capture_output=True, env=env, shell=shell)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"failed ({p.returncode}): {p.stderr.decode()[-1500:]}")
    return dt


def start(work: Path) -> list[SSHD]:
    from tests.sshd import start_sshd

    addrs = [f"127.0.0.{i}" for i in range(1, N + 1)]
    first = start_sshd(work / "sshd0", addrs[:16])
    d = work / "sshd1"
    d.mkdir(parents=True)
    for name in ("id_ed25519", "id_ed25519.pub"):
        shutil.copy(first.workdir / name, d / name)
    return [first, start_sshd(d, addrs[16:])]


def register(servers: list[SSHD]) -> list[tuple[str, int]]:
    from tests.sshd import register_sshd
    from vpsagent.db.engine import get_engine
    from vpsagent.services.vault import get_keyring
    from vpsagent.settings import load_settings

    settings = load_settings()
    engine = get_engine(settings)
    kr = get_keyring(settings, engine, notify=lambda m: None)
    targets = []
    for s in servers:
        for a in s.hosts:
            register_sshd(engine, kr, s, f"srv{len(targets) + 1:02d}", address=a)
            targets.append((a, s.port))
    engine.dispose()
    return targets


def ssh_base(work: Path, key: str, user: str, servers: list[SSHD]) -> list[str]:
    known = work / "known_hosts"
    known.write_text("".join(f"[{a}]:{s.port} {s.host_key_type} {s.host_key_base64}\n"
                             for s in servers for a in s.hosts))
    return ["ssh", "-i", key, "-l", user, "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes", "-o", f"ControlPath={work}/cm-%h-%p", "-o", "ControlMaster=auto",
            "-o", "ControlPersist=300"]


def main() -> None:
    from vpsagent.support.collectors import COLLECTORS, collection_script

    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    work = Path(tempfile.mkdtemp(prefix="vpsagent-bench-support-"))
    env = dict(os.environ, VPSAGENT_HOME=str(work / "home"), VPSAGENT_SECRET="bench-secret-0123456789abcdef",
               NO_COLOR="1")
    env.pop("DATABASE_URL", None)
    env.pop("ANTHROPIC_API_KEY", None)
    os.environ.update(VPSAGENT_HOME=env["VPSAGENT_HOME"], VPSAGENT_SECRET=env["VPSAGENT_SECRET"])
    servers: list[SSHD] = []
    ssh: list[str] = []
    targets: list[tuple[str, int]] = []
    try:
        servers = start(work)
        targets = register(servers)
        ssh = ssh_base(work, str(servers[0].client_key_path), servers[0].user, servers)
        script = collection_script(COLLECTORS, minutes=120)
        vp = shutil.which("vpsagent") or sys.exit("install the package first (pip install -e .)")
        one_v = [vp, "support", "--no-ai", "-s", "srv01", "--json"]
        all_v = [vp, "support", "--no-ai", "--all", "--json"]
        a0, p0 = targets[0]
        script_file = work / "collect.sh"
        script_file.write_text(script + "\n")
        import shlex

        def over_ssh(a: str, p: int) -> str:  # the script on stdin: it is too long for a command line
            return f"{shlex.join([*ssh, '-p', str(p), a, 'sh -s'])} < {shlex.quote(str(script_file))} >/dev/null"

        one_ssh = ["sh", "-c", over_ssh(a0, p0)]
        # warm every master (a ControlMaster that is already open), and check each side works
        for a, p in targets:
            timed([*ssh, "-p", str(p), a, "true"], env)
        timed(one_v, env)
        par = " ".join(f"{over_ssh(a, p)} &" for a, p in targets) + " wait"
        loop = " ; ".join(shlex.join([*ssh, "-p", str(p0), a0, c.script.replace("{minutes}", "120")
                                      .replace("{log_files}", "")]) + " >/dev/null" for c in COLLECTORS)
        res: dict[str, list[float]] = {k: [] for k in ("one_v", "one_ssh", "loop", "all_v", "all_ssh")}
        for _ in range(runs):
            res["one_v"].append(timed(one_v, env))
            res["one_ssh"].append(timed(one_ssh, env))
            res["loop"].append(timed(["sh", "-c", loop], env))
            res["all_v"].append(timed(all_v, env))
            res["all_ssh"].append(timed(["sh", "-c", par], env))
        med = {k: statistics.median(v) for k, v in res.items()}
        print(f"| case (median of {runs}) | seconds |")
        print("|---|---:|")
        print(f"| `vpsagent support --no-ai -s srv01` (whole process) | {med['one_v']:.2f} |")
        print(f"| the same collection script over a warm OpenSSH master, 1 server | {med['one_ssh']:.2f} |")
        print(f"| the {len(COLLECTORS)} snippets one `ssh` each over a warm master, 1 server | {med['loop']:.2f} |")
        print(f"| `vpsagent support --no-ai --all` ({N} servers, whole process) | {med['all_v']:.2f} |")
        print(f"| the collection script over warm masters, {N} servers in parallel | {med['all_ssh']:.2f} |")
        print(f"\nall runs: { {k: [round(x, 2) for x in v] for k, v in res.items()} }")
    finally:
        for a, p in targets if ssh else []:  # close the masters this script opened
            subprocess.run([*ssh, "-p", str(p), "-O", "exit", a], capture_output=True)
        for s in servers:
            s.kill_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
