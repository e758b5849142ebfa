"""`vpsagent run --all uptime` over 50 servers vs a bare Fabric ThreadingGroup script vs
`ansible all -m raw -a uptime -f 50` (issue 3: within 1.2x of Fabric, >= 3x faster than Ansible).

50 "servers" are 50 loopback addresses served by four private sshd processes (sshd
accepts at most 16 ListenAddress lines each), with generated host and client keys, as
in the test suite. Every side is a whole process, started fresh for each run:

- vpsagent: `vpsagent run --all uptime` (SQLite, keys decrypted from the encrypted
  store, host keys verified against the pinned ones, 100 audit-log writes).
- Fabric: `python -c <script>` building a ThreadingGroup of 50 Connections (key file,
  Fabric's default AutoAddPolicy — no host-key verification) and `group.run("uptime", hide=True)`.
- Ansible: ansible-core from the benchmark's own venv (bench/.work/venv; not a
  vpsagent dependency), `-m raw`, 50 forks, host keys checked, measured twice: cold,
  OpenSSH with a fresh ControlPath dir each run (no master connection survives between
  runs, as for a cron job or CI), and warm, one ControlPath dir whose 50 masters were
  opened before timing and are reused (ControlPersist=30m, as for an operator re-running).

Run: python bench/fanout_50.py [RUNS]   (ansible: python -m venv bench/.work/venv &&
bench/.work/venv/bin/pip install ansible-core)
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

N = 50
ANSIBLE = ROOT / "bench" / ".work" / "venv" / "bin" / "ansible"

FABRIC_SCRIPT = """
import sys
from fabric import Connection, ThreadingGroup
hosts = [h.split(":") for h in sys.argv[3:]]
conns = [Connection(a, user=sys.argv[1], port=int(p), connect_kwargs={"key_filename": sys.argv[2]})
         for a, p in hosts]
res = ThreadingGroup.from_connections(conns).run("uptime", hide=True)
bad = [c for c, r in res.items() if not (hasattr(r, "ok") and r.ok)]
sys.exit(1 if bad or len(res) != len(conns) else 0)
"""


def addresses() -> list[list[str]]:
    addrs = [f"127.0.0.{i}" for i in range(1, N + 1)]
    return [addrs[i:i + 16] for i in range(0, N, 16)]


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, env=env)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({p.returncode}):\n{p.stderr.decode()[-2000:]}\n{p.stdout.decode()[-2000:]}")
    return dt


def start_servers(work: Path, servers: list[SSHD]) -> None:
    """Four private sshds on the 50 loopback addresses, all accepting one client key; each is
    added to `servers` as soon as it runs, so the caller can stop them whatever happens."""
    from tests.sshd import start_sshd

    # one client key for all: copy the first server's key into the others' dirs
    for i, group in enumerate(addresses()):
        d = work / f"sshd{i}"
        if servers:
            d.mkdir(parents=True)
            for name in ("id_ed25519", "id_ed25519.pub"):
                shutil.copy(servers[0].workdir / name, d / name)
        servers.append(start_sshd(d, group))


def register_all(servers: list[SSHD]) -> list[tuple[str, int]]:
    """srv01..srv50 in the inventory (keys stored encrypted, host keys pinned); their (address, port)."""
    from tests.sshd import register_sshd
    from vpsagent.db.engine import get_engine
    from vpsagent.services.vault import get_keyring
    from vpsagent.settings import load_settings

    settings = load_settings()
    engine = get_engine(settings)
    kr = get_keyring(settings, engine, notify=lambda m: None)
    targets = []  # (address, port)
    for s in servers:
        for a in s.hosts:
            register_sshd(engine, kr, s, f"srv{len(targets) + 1:02d}", address=a)
            targets.append((a, s.port))
    engine.dispose()
    return targets


def ansible_files(work: Path, servers: list[SSHD], targets: list[tuple[str, int]], user: str) -> tuple[Path, Path]:
    """Ansible's known_hosts (the same host keys vpsagent pinned) and inventory."""
    known = work / "known_hosts"
    known.write_text("".join(f"[{a}]:{p} {s.host_key_type} {s.host_key_base64}\n"
                             for s in servers for a, p in targets if p == s.port))
    inv = work / "inventory.ini"
    inv.write_text("[all]\n" + "".join(
        f"srv{i:02d} ansible_host={a} ansible_port={p} ansible_user={user}\n"
        for i, (a, p) in enumerate(targets, 1)))
    return known, inv


def print_table(res: dict[str, list[float]], runs: int) -> None:
    med = {k: statistics.median(v) for k, v in res.items() if v}
    print(f"| case ({N} servers, median of {runs}) | seconds | × Fabric |")
    print("|---|---:|---:|")
    names = {"fabric": "bare Fabric ThreadingGroup script (whole process)",
             "vpsagent": "`vpsagent run --all uptime` (whole process)",
             "ansible": "`ansible all -m raw -a uptime -f 50`, cold ControlMasters (fresh ControlPath dir)",
             "ansible_warm": "`ansible all -m raw -a uptime -f 50`, warm ControlMasters (opened before, reused)"}
    for k in ("fabric", "vpsagent", "ansible", "ansible_warm"):
        if k in med:
            print(f"| {names[k]} | {med[k]:.2f} | {med[k] / med['fabric']:.2f} |")
    if "ansible" in med:
        print(f"\nvpsagent is {med['ansible'] / med['vpsagent']:.1f}x faster than Ansible with cold masters, "
              f"{med['ansible_warm'] / med['vpsagent']:.1f}x with warm ones; "
              f"all runs: {({k: [round(x, 2) for x in v] for k, v in res.items()})}")


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    work = Path(tempfile.mkdtemp(prefix="vpsagent-bench-fanout-"))
    home = work / "home"
    env = dict(os.environ, VPSAGENT_HOME=str(home), VPSAGENT_SECRET="bench-secret-0123456789abcdef",
               NO_COLOR="1")
    env.pop("DATABASE_URL", None)
    os.environ.update(VPSAGENT_HOME=env["VPSAGENT_HOME"], VPSAGENT_SECRET=env["VPSAGENT_SECRET"])
    os.environ.pop("DATABASE_URL", None)
    servers: list[SSHD] = []
    try:
        start_servers(work, servers)
        targets = register_all(servers)
        key = str(servers[0].client_key_path)
        user = servers[0].user
        known, inv = ansible_files(work, servers, targets, user)

        # this checkout's vpsagent (not whichever `vpsagent` is first on PATH); compile it
        # first (python -m compileall -q vpsagent) where PYTHONDONTWRITEBYTECODE is set
        env["PYTHONPATH"] = str(ROOT)
        vcmd = [sys.executable, "-m", "vpsagent", "run", "--all", "uptime"]
        fcmd = [sys.executable, "-c", FABRIC_SCRIPT, user, key, *[f"{a}:{p}" for a, p in targets]]

        warm_cp = tempfile.mkdtemp(prefix="cp-warm", dir=work)

        def acmd_env(warm: bool = False) -> tuple[list[str], dict[str, str]]:
            # cold: a fresh ControlPath dir, so every run opens 50 new SSH connections;
            # warm: one dir for all runs, its masters opened by the warm-up and kept alive,
            # as for an operator running ansible again within ControlPersist
            cp = warm_cp if warm else tempfile.mkdtemp(prefix="cp", dir=work)
            e = dict(env, ANSIBLE_SSH_CONTROL_PATH_DIR=cp, ANSIBLE_HOST_KEY_CHECKING="True",
                     ANSIBLE_SSH_ARGS="-o ControlMaster=auto -o ControlPersist=30m",
                     ANSIBLE_PRIVATE_KEY_FILE=key, ANSIBLE_LOCAL_TEMP=str(work / "ansible-tmp"),
                     ANSIBLE_SSH_COMMON_ARGS="", ANSIBLE_NOCOLOR="1",
                     ANSIBLE_SSH_EXTRA_ARGS=f"-o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes")
            return [str(ANSIBLE), "all", "-i", str(inv), "-m", "raw", "-a", "uptime", "-f", "50"], e

        # warm-up (page cache, schema) and a correctness check of each side
        timed(vcmd, env)
        timed(fcmd, env)
        have_ansible = ANSIBLE.exists()
        if have_ansible:
            timed(*acmd_env())
            timed(*acmd_env(warm=True))  # opens the 50 masters the warm runs reuse

        res: dict[str, list[float]] = {"vpsagent": [], "fabric": [], "ansible": [], "ansible_warm": []}
        for _ in range(runs):
            res["vpsagent"].append(timed(vcmd, env))
            res["fabric"].append(timed(fcmd, env))
            if have_ansible:
                res["ansible"].append(timed(*acmd_env()))
                res["ansible_warm"].append(timed(*acmd_env(warm=True)))
        print_table(res, runs)
        if have_ansible:  # close the warm masters
            for f in Path(warm_cp).iterdir():
                subprocess.run(["ssh", "-o", f"ControlPath={f}", "-O", "exit", "x"], capture_output=True)
    finally:
        for s in servers:
            s.kill_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
