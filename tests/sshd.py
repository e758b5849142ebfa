"""A real OpenSSH server for the test suite (never the system one, never off loopback).

`start_sshd(workdir, addresses)` starts `/usr/sbin/sshd -D -e -f <cfg>` as the current
user on a free port, listening on each given 127.0.0.x address (at most 16 per process,
sshd's ListenAddress limit), with a fresh ed25519 host key and client key in `workdir`,
and waits until every address answers with an SSH banner.

Fixtures (pulled in by tests/conftest.py):
- `sshd`: one per test session (per xdist worker), on 127.0.0.1 … 127.0.0.8, one port,
  so fan-out tests can address eight "servers".
- `sshd_factory`: extra servers for one test (killed after it), e.g. to kill one mid-command
  or to present a different host key.
- `ssh_server`: the session sshd registered in the test's inventory as `t1`, host key pinned.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SSHD_BIN = os.environ.get("VPSAGENT_TEST_SSHD", "/usr/sbin/sshd")
MAX_ADDRESSES = 16  # sshd accepts at most 16 ListenAddress lines


@dataclass
class SSHD:
    host: str  # the first listen address
    hosts: list[str]  # every listen address (all on `port`)
    port: int
    user: str  # the user the client key logs in as
    client_key_path: Path  # ed25519 private key, OpenSSH format, no passphrase
    client_pub: str  # "ssh-ed25519 AAAA... comment"
    host_key_path: Path
    host_key_type: str  # "ssh-ed25519"
    host_key_base64: str  # the public host key, as in known_hosts
    host_key_fingerprint: str  # "SHA256:..." as `ssh-keygen -l` prints it
    workdir: Path
    config_path: Path
    log_path: Path
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        self.proc = _spawn(self.config_path, self.log_path)
        _wait_ready(self.proc, self.hosts, self.port, self.log_path)

    def stop(self) -> None:
        """Stop the listener. Established sessions (forked children) keep running."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def kill_sessions(self) -> None:
        """Kill every live connection of this server (its sshd children): a crashed server."""
        for pid in _descendants(self.pid) if self.pid else []:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def kill_all(self) -> None:
        self.kill_sessions()
        self.stop()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def ssh_args(self, address: str | None = None) -> list[str]:
        """An OpenSSH client command line that reaches this server (for benchmarks and checks)."""
        known = self.workdir / "known_hosts"
        if not known.exists():
            known.write_text("".join(f"[{h}]:{self.port} {self.host_key_type} {self.host_key_base64}\n"
                                     for h in self.hosts))
        return ["ssh", "-p", str(self.port), "-i", str(self.client_key_path), "-o", "IdentitiesOnly=yes",
                "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
                f"{self.user}@{address or self.host}"]


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def free_port(addresses: list[str]) -> int:
    """A port free on every address (bound on the first, checked on the others)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind((addresses[0], 0))
            port = s.getsockname()[1]
        ok = True
        for a in addresses[1:]:
            with socket.socket() as s:
                try:
                    s.bind((a, port))
                except OSError:
                    ok = False
                    break
        if ok:
            return port
    raise RuntimeError("no free port")


def _keygen(path: Path, comment: str) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True)


def _fingerprint(pub: Path) -> str:
    out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(pub)], check=True, capture_output=True,
                         text=True).stdout
    return out.split()[1]


def _spawn(config: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen([SSHD_BIN, "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=open(log, "ab"))  # noqa: SIM115


def _wait_ready(proc: subprocess.Popen, hosts: list[str], port: int, log: Path) -> None:
    deadline = time.monotonic() + 15
    pending = list(hosts)
    while pending:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"sshd did not answer on {pending}:\n{log.read_text(errors='replace')}")
        try:
            with socket.create_connection((pending[0], port), timeout=1) as s:
                if s.recv(64).startswith(b"SSH-2.0"):
                    pending.pop(0)
                    continue
        except OSError:
            pass
        time.sleep(0.05)


def start_sshd(workdir: Path, addresses: list[str] | None = None, *, extra_config: str = "",
               host_key: Path | None = None) -> SSHD:
    """Start a real sshd on `addresses` (default 127.0.0.1) with fresh keys under `workdir`."""
    if not Path(SSHD_BIN).exists():
        raise RuntimeError(f"{SSHD_BIN} not found: install Debian's openssh-server (.ci/run does)")
    addresses = list(addresses or ["127.0.0.1"])
    if len(addresses) > MAX_ADDRESSES:
        raise ValueError(f"sshd listens on at most {MAX_ADDRESSES} addresses")
    if any(not a.startswith("127.") for a in addresses):
        raise ValueError("the test sshd listens on loopback only")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
    workdir.mkdir(parents=True, exist_ok=True)
    hk = workdir / "host_ed25519"
    if host_key is not None:
        shutil.copy(host_key, hk)
        shutil.copy(str(host_key) + ".pub", str(hk) + ".pub")
        os.chmod(hk, 0o600)
    else:
        _keygen(hk, "vpsagent-test-host")
    ck = workdir / "client_ed25519"
    _keygen(ck, "vpsagent-test-client")
    client_pub = Path(str(ck) + ".pub").read_text().strip()
    (workdir / "authorized_keys").write_text(client_pub + "\n")
    user = pwd.getpwuid(os.getuid()).pw_name
    port = free_port(addresses)
    config = workdir / "sshd_config"
    lines = [f"Port {port}"] + [f"ListenAddress {a}" for a in addresses] + [
        f"HostKey {hk}",
        f"PidFile {workdir / 'sshd.pid'}",
        f"AuthorizedKeysFile {workdir / 'authorized_keys'}",
        "UsePAM no",
        "StrictModes no",
        "PermitRootLogin yes",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UseDNS no",
        "MaxStartups 200:30:400",
        "MaxSessions 200",
        "LogLevel INFO",
        "Subsystem sftp internal-sftp",
        extra_config,
    ]
    config.write_text("\n".join(lines) + "\n")
    host_pub = Path(str(hk) + ".pub").read_text().split()
    server = SSHD(
        host=addresses[0], hosts=addresses, port=port, user=user, client_key_path=ck, client_pub=client_pub,
        host_key_path=hk, host_key_type=host_pub[0], host_key_base64=host_pub[1],
        host_key_fingerprint=_fingerprint(Path(str(hk) + ".pub")), workdir=workdir, config_path=config,
        log_path=workdir / "sshd.log",
    )
    server.start()
    return server


def register_sshd(settings, server: SSHD, name: str = "t1", *, address: str | None = None,
                  tags: list[str] | None = None, pin: bool = True) -> str:
    """Add `server` to the inventory of `settings` as `name` (its client key stored encrypted).

    With `pin`, its host key is pinned as if `servers check` had run, so tests do not depend on
    trust-on-first-use unless they want to.
    """
    from vpsagent.db.engine import get_engine
    from vpsagent.services import servers as svc
    from vpsagent.services.vault import get_keyring

    engine = get_engine(settings)
    keyring = get_keyring(settings, engine, notify=lambda _m: None)
    svc.add_server(engine, lambda: keyring, svc.ServerSpec(
        name=name, host=address or server.host, port=server.port, user=server.user,
        key_path=server.client_key_path, tags=list(tags or [])))
    if pin:
        svc.pin_host_key(engine, name, server.host_key_type, server.host_key_base64, server.host_key_fingerprint)
    return name


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHD]:
    """The session's sshd on 127.0.0.1 … 127.0.0.8, one port."""
    server = start_sshd(tmp_path_factory.mktemp("sshd"), [f"127.0.0.{i}" for i in range(1, 9)])
    try:
        yield server
    finally:
        server.kill_all()


@pytest.fixture
def sshd_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., SSHD]]:
    """`sshd_factory(addresses=None, **kw) -> SSHD`: extra servers, killed after the test."""
    started: list[SSHD] = []

    def make(addresses: list[str] | None = None, **kw) -> SSHD:
        s = start_sshd(tmp_path_factory.mktemp("sshd-extra"), addresses, **kw)
        started.append(s)
        return s

    try:
        yield make
    finally:
        for s in started:
            s.kill_all()


@pytest.fixture
def ssh_server(settings, sshd: SSHD) -> str:
    """The session sshd registered (host key pinned) as server `t1` in this test's home."""
    return register_sshd(settings, sshd, "t1")
