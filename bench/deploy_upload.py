"""`vpsagent deploy` of a 50 MB archive to 10 servers, side by side with `scp` of the same
file to the same servers in the same run (issue 14: the upload within 1.3x of scp).

The servers are loopback addresses served by a private sshd, as in the test suite; GitHub
is the test suite's local API serving a real git repository whose one file is 50 MB of
random bytes (so the .tar.gz is 50 MB: gzip cannot shrink it). Compared, each fresh per run:

- vpsagent: `vpsagent deploy` as a whole process (SQLite, keys decrypted, host keys checked,
  GitHub resolved, the archive downloaded once, uploaded to the 10 servers in parallel over
  SFTP, unpacked, switched, recorded). Reported: the whole process, and its `fetch` stage
  (the upload: the slowest server's, from `--json`), which is what scp does.
- vpsagent's upload alone: the deploy's own code path (the fleet, `Host.upload` over the
  pooled connections, 10 servers in parallel) with nothing else running. Inside a whole
  deploy here, the servers that finish first start unpacking 50 MB while the others still
  upload — on this one machine that hosts all 10 "servers", so the fetch stage above also
  pays for their gunzip. On real servers that work is theirs, not this machine's.
- scp: the same archive to the same 10 servers at once (10 `scp` processes) through
  ControlMasters that are already open (warm peers), i.e. only the copy.

Run: python bench/deploy_upload.py [RUNS]
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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.sshd import SSHD

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

N = 10
SIZE = 50 * 1024 * 1024


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.email=b@b", "-c", "user.name=b", "-c", "commit.gpgsign=false",
                    *args], check=True, capture_output=True)


def make_repo(work: Path, srv_root: Path) -> Path:
    repo = work / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "symbolic-ref", "HEAD", "refs/heads/main")
    (repo / "blob.bin").write_bytes(os.urandom(SIZE))
    (repo / ".vpsagent").mkdir()
    servers = ", ".join(f"srv{i:02d}" for i in range(1, N + 1))
    (repo / ".vpsagent" / "deploy.yml").write_text(
        f"app: bench\nservers: [{servers}]\npath: {srv_root}/{{server}}\nkeep_releases: 1\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "bench")
    return repo


def upload_only(settings: object, data: bytes, names: list[str], work: Path) -> float:
    """The deploy's upload path with nothing else running: connections opened (and a first
    command run) beforehand, as the deploy's `lock` stage does before `fetch`."""
    from concurrent.futures import ThreadPoolExecutor

    from vpsagent.services.context import Context
    from vpsagent.services.fleet import open_fleet

    ctx = Context(settings)  # type: ignore[arg-type]
    (work / "up").mkdir(exist_ok=True)
    with open_fleet(ctx, names, warm=True) as fleet, ThreadPoolExecutor(len(names)) as ex:
        list(ex.map(lambda n: fleet.run(n, "true", source="bench"), names))
        t0 = time.perf_counter()
        list(ex.map(lambda n: fleet.host(n).upload(str(work / "up" / f"{n}.tar.gz"), data), names))
        return time.perf_counter() - t0


def rounds(runs: int, deploy: list[str], env: dict[str, str], archive: Path, base: list[str], sshd: SSHD,
           addrs: list[str], work: Path, settings: object) -> dict[str, list[float]]:
    """Each round: the deploy's upload alone, a whole deploy, then scp — the same archive."""
    res: dict[str, list[float]] = {"deploy": [], "fetch": [], "upload": [], "scp": []}
    data = archive.read_bytes()
    for _ in range(runs):
        res["upload"].append(upload_only(settings, data, [f"srv{i:02d}" for i in range(1, N + 1)], work))
        t0 = time.perf_counter()
        p = subprocess.run(deploy, capture_output=True, env=env)
        res["deploy"].append(time.perf_counter() - t0)
        if p.returncode != 0:
            raise SystemExit(f"deploy failed ({p.returncode}): {p.stderr.decode()[-2000:]}")
        servers = json.loads(p.stdout)["data"]["servers"]
        res["fetch"].append(max(s["duration_s"] for x in servers for s in x["stages"] if s["name"] == "fetch"))
        t0 = time.perf_counter()
        procs = [subprocess.Popen(["scp", "-q", *base, "-P", str(sshd.port), str(archive),
                                   f"{sshd.user}@{a}:{work}/scp/{a}.tar.gz"]) for a in addrs]
        codes = [pr.wait() for pr in procs]
        res["scp"].append(time.perf_counter() - t0)
        if any(codes):
            raise SystemExit(f"scp failed: {codes}")
    return res


def report(res: dict[str, list[float]], runs: int, archive: Path) -> None:
    med = {k: statistics.median(v) for k, v in res.items()}
    print(f"archive {archive.stat().st_size / 1024**2:.1f} MiB to {N} servers; median of {runs} runs\n")
    print("| case | seconds |")
    print("|---|---:|")
    print(f"| `vpsagent deploy` to {N} servers (whole process) | {med['deploy']:.2f} |")
    print(f"| its upload (`fetch` stage, slowest server) | {med['fetch']:.2f} |")
    print(f"| the deploy's upload path alone (the fleet, `Host.upload`, {N} at once) | {med['upload']:.2f} |")
    print(f"| `scp` of the same archive to the same {N} servers at once (warm masters) | {med['scp']:.2f} |")
    print(f"| upload alone / scp | {med['upload'] / med['scp']:.2f}x |")
    print(f"| fetch stage within the deploy / scp | {med['fetch'] / med['scp']:.2f}x |")
    print(f"\nall runs: { {k: [round(x, 2) for x in v] for k, v in res.items()} }")


def main() -> None:
    from tests.fakes.github_api import FakeGitHubAPI
    from tests.sshd import register_sshd, start_sshd
    from vpsagent.db.engine import get_engine
    from vpsagent.services.vault import get_keyring
    from vpsagent.settings import load_settings

    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    work = Path(tempfile.mkdtemp(prefix="vpsagent-bench-deploy-"))
    env = dict(os.environ, VPSAGENT_HOME=str(work / "home"), VPSAGENT_SECRET="bench-secret-0123456789abcdef",
               NO_COLOR="1")
    for var in ("DATABASE_URL", "ANTHROPIC_API_KEY", "GITHUB_TOKEN", "GITHUB_API_URL"):
        env.pop(var, None)
    os.environ.update(VPSAGENT_HOME=env["VPSAGENT_HOME"], VPSAGENT_SECRET=env["VPSAGENT_SECRET"])
    addrs = [f"127.0.0.{i}" for i in range(1, N + 1)]
    sshd = start_sshd(work / "sshd0", addrs)
    api = FakeGitHubAPI()
    base: list[str] = []
    try:
        settings = load_settings()
        engine = get_engine(settings)
        kr = get_keyring(settings, engine, notify=lambda m: None)
        for i, a in enumerate(addrs, 1):
            register_sshd(engine, kr, sshd, f"srv{i:02d}", address=a)
        engine.dispose()
        srv_root = work / "srv"
        repo = make_repo(work, srv_root)
        api.add_repo("bench/app", repo)
        env.update(GITHUB_TOKEN=api.token, GITHUB_API_URL=api.url)
        archive = work / "archive.tar.gz"
        subprocess.run(["git", "-C", str(repo), "archive", "--format=tar.gz", "-o", str(archive), "HEAD"], check=True)
        known = work / "known_hosts"
        known.write_text("".join(f"[{a}]:{sshd.port} {sshd.host_key_type} {sshd.host_key_base64}\n" for a in addrs))
        base = ["-i", str(sshd.client_key_path), "-o", f"UserKnownHostsFile={known}", "-o", "BatchMode=yes",
                "-o", f"ControlPath={work}/cm-%h-%p", "-o", "ControlMaster=auto", "-o", "ControlPersist=600"]
        for a in addrs:  # warm masters, and check each side works
            subprocess.run(["ssh", *base, "-p", str(sshd.port), "-l", sshd.user, a, f"mkdir -p {work}/scp"], check=True)
        vp = shutil.which("vpsagent") or sys.exit("install the package first (pip install -e .)")
        deploy = [vp, "deploy", "bench/app", "--ref", "main", "--json", "--no-diagnose"]
        res = rounds(runs, deploy, env, archive, base, sshd, addrs, work, settings)
        report(res, runs, archive)
    finally:
        for a in addrs if base else []:  # close the masters this script opened
            subprocess.run(["ssh", *base, "-p", str(sshd.port), "-O", "exit", a], capture_output=True)
        sshd.kill_all()
        api.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
