"""A real OpenSSH server for the test suite (never the system one, never off loopback).

`start_sshd(workdir, addresses)` starts `/usr/sbin/sshd -D -e -f <cfg>` as the current
user on a free port, listening on each of the given 127.0.0.x addresses (≤ 16 per
process: sshd's ListenAddress limit), with a fresh ed25519 host key and client key in
`workdir`. It waits until the server answers with an SSH banner and returns an `SSHD`.

Fixtures (pulled in by tests/conftest.py):
- `sshd`: one per test session, on 127.0.0.1 … 127.0.0.8 (same port), so fan-out
  tests can address eight "servers".
- `sshd_factory`: start extra servers (killed at the end of the test) for tests that
  kill sshd mid-command or need a different host key.
- `ssh_server`: registers the session sshd in the test's inventory as `t1` (helper
  `register_sshd` does the same for any name/address).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

SSHD_BIN = os.environ.get("VPSAGENT_TEST_SSHD", "/usr/sbin/sshd")
# sshd accepts at most 16 ListenAddress lines.
MAX_ADDRESSES = 16


@dataclass
class SSHD:
    host: str  # the first listen address
    hosts: list[str]  # every listen address (all on `port`)
    port: int
    user: str  # a user the client key logs in as
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
        """Kill every sshd child of this server (live connections) — a 'crashed server'."""
        for pid in _children_of(self.pid) if self.pid else []:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def kill_all(self) -> None:
        """The server dies: the listener and every live connection."""
        children = _children_of(self.pid) if self.pid else []
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc = None

    def start(self) -> None:
        """(Re)start the listener with the same keys, port and addresses."""
        if self.alive():
            return
        self.proc = _spawn(self.config_path, self.log_path)
        _wait_ready(self.proc, self.hosts, self.port, self.log_path)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def ssh_args(self, address: str | None = None) -> list[str]:
        """Arguments for the OpenSSH client, pinned to this server's host key."""
        kh = self.workdir / "known_hosts"
        return [
            "ssh",
            "-p", str(self.port),
            "-i", str(self.client_key_path),
            "-o", "IdentitiesOnly=yes",
            "-o", f"UserKnownHostsFile={kh}",
            "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes",
            f"{self.user}@{address or self.host}",
        ]


def _children_of(pid: int) -> list[int]:
    out: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # field 4 (after the parenthesised comm, which may hold spaces) is the ppid
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            out.append(int(entry.name))
            out.extend(_children_of(int(entry.name)))
    return out


def free_port(addresses: list[str]) -> int:
    """A port free on every address (bound by sshd a moment later)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind((addresses[0], 0))
            port = s.getsockname()[1]
        ok = True
        for addr in addresses[1:]:
            with socket.socket() as s:
                try:
                    s.bind((addr, port))
                except OSError:
                    ok = False
                    break
        if ok:
            return port
    raise RuntimeError("no free port on " + ", ".join(addresses))


def _keygen(path: Path, comment: str) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )


def _fingerprint(pub: Path) -> str:
    out = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", str(pub)],
        check=True, capture_output=True, text=True,
    ).stdout
    return out.split()[1]


def _spawn(config: Path, log: Path) -> subprocess.Popen:
    # -e sends the log to stderr; keep it in a file so a failing test can show it.
    logf = open(log, "ab")  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(
            [SSHD_BIN, "-D", "-e", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=logf,
            start_new_session=True,  # a Ctrl-C aimed at pytest must not reach it
        )
    finally:
        logf.close()


def _wait_ready(proc: subprocess.Popen, hosts: list[str], port: int, log: Path) -> None:
    deadline = time.monotonic() + 10
    pending = list(hosts)
    while pending:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
        addr = pending[0]
        try:
            with socket.create_connection((addr, port), timeout=1) as s:
                s.settimeout(2)
                if s.recv(64).startswith(b"SSH-"):
                    pending.pop(0)
                    continue
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"sshd did not answer on {addr}:{port}:\n{log.read_text(errors='replace')}")
        time.sleep(0.05)


def start_sshd(
    workdir: Path,
    addresses: list[str] | None = None,
    *,
    port: int | None = None,
    password_auth: bool = False,
    extra_config: str = "",
    log_level: str = "INFO",
    user_keys: bool = False,
) -> SSHD:
    """Start a private sshd; the caller stops it (`.kill_all()`).

    `extra_config` lines come last (sshd keeps the first value of an option, so they
    can only add options); `log_level` DEBUG1 logs forwarded channels and the like;
    `user_keys` also accepts each user's own ~/.ssh/authorized_keys (for tests that log
    in as another account: sshd reads that file as the user, who cannot read ours).
    """
    addresses = addresses or ["127.0.0.1"]
    if len(addresses) > MAX_ADDRESSES:
        raise ValueError(f"sshd listens on at most {MAX_ADDRESSES} addresses")
    for a in addresses:
        if not a.startswith("127."):
            raise ValueError(f"tests only talk to loopback, not {a}")
    if not Path(SSHD_BIN).exists():
        raise RuntimeError(f"{SSHD_BIN} is missing: install openssh-server (.ci/run does)")
    workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o700)
    if os.geteuid() == 0:
        # the privilege-separation directory sshd insists on (absent in containers)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)

    user = pwd.getpwuid(os.geteuid()).pw_name
    host_key = workdir / "ssh_host_ed25519_key"
    client_key = workdir / "id_ed25519"
    if not host_key.exists():
        _keygen(host_key, "vpsagent-test-host")
    if not client_key.exists():
        _keygen(client_key, "vpsagent-test-client")
    client_pub = (workdir / "id_ed25519.pub").read_text().strip()
    auth_keys = workdir / "authorized_keys"
    auth_keys.write_text(client_pub + "\n")
    auth_keys.chmod(0o600)
    host_pub = (workdir / "ssh_host_ed25519_key.pub").read_text().split()
    port = port or free_port(addresses)
    (workdir / "known_hosts").write_text(
        "".join(f"[{a}]:{port} {host_pub[0]} {host_pub[1]}\n" for a in addresses)
    )

    listen = "".join(f"ListenAddress {a}:{port}\n" for a in addresses)
    config = workdir / "sshd_config"
    config.write_text(
        f"""{listen}HostKey {host_key}
PidFile {workdir / 'sshd.pid'}
AuthorizedKeysFile {auth_keys}{' .ssh/authorized_keys' if user_keys else ''}
UsePAM no
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication {'yes' if password_auth else 'no'}
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
PermitUserEnvironment no
AllowTcpForwarding yes
X11Forwarding no
PrintMotd no
PrintLastLog no
UseDNS no
LogLevel {log_level}
MaxStartups 500
MaxSessions 200
LoginGraceTime 30
ClientAliveInterval 0
AcceptEnv LANG LC_*
# Debian's bash sources ~/.bashrc for commands run by sshd when SHLVL < 2; on dev
# machines that .bashrc (pyenv init) costs ~80 ms per command and would dominate
# every timing. A server with a plain .bashrc behaves the same as this.
SetEnv SHLVL=1
Subsystem sftp internal-sftp
{extra_config}"""
    )
    log = workdir / "sshd.log"
    server = SSHD(
        host=addresses[0],
        hosts=list(addresses),
        port=port,
        user=user,
        client_key_path=client_key,
        client_pub=client_pub,
        host_key_path=host_key,
        host_key_type=host_pub[0],
        host_key_base64=host_pub[1],
        host_key_fingerprint=_fingerprint(workdir / "ssh_host_ed25519_key.pub"),
        workdir=workdir,
        config_path=config,
        log_path=log,
    )
    server.start()
    return server


def register_sshd(*args: Any, name: str | None = None, address: str | None = None,
                  tags: list[str] | None = None, pin: bool = True, jump: str | None = None) -> str:
    """Add an SSHD to the inventory (key auth; the key is stored encrypted); returns the name.

    Two spellings:
      register_sshd(settings, server, name="t1", *, address=None, tags=None, pin=True, jump=None)
      register_sshd(engine, keyring_or_getter, server, name="t1", *, ...)
    With `pin`, the host key is pinned as if `servers check` had run, so tests do not
    depend on trust on first use unless they want to.
    """
    from vpsagent.services import servers as svc
    from vpsagent.services.context import Context
    from vpsagent.settings import Settings

    if isinstance(args[0], Context):
        ctx, server, *rest = args
    elif isinstance(args[0], Settings):
        settings, server, *rest = args
        ctx = Context(settings)
    else:
        engine, keyring_get, server, *rest = args
        get = keyring_get if callable(keyring_get) else (lambda: keyring_get)

        class _Given(Context):  # the caller's engine and keyring
            def keyring(self) -> Any:
                return get()

        ctx = _Given(engine=engine)
    engine = ctx.engine
    name = name or (rest[0] if rest else "t1")
    svc.add_server(
        ctx,
        svc.ServerSpec(
            name=name,
            host=address or server.host,
            port=server.port,
            user=server.user,
            key_path=server.client_key_path,
            tags=list(tags or []),
            jump=jump,
        ),
    )
    if pin:
        from vpsagent.db.inventory import pin_host_key

        pin_host_key(engine, name, server.host_key_type, server.host_key_base64,
                         server.host_key_fingerprint)
    return name


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHD]:
    """The session's sshd on 127.0.0.1 … 127.0.0.8, one port."""
    server = start_sshd(
        tmp_path_factory.mktemp("sshd"), [f"127.0.0.{i}" for i in range(1, 9)]
    )
    try:
        yield server
    finally:
        server.kill_all()


@pytest.fixture
def sshd_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """`sshd_factory(addresses=None, **kw) -> SSHD`: extra servers, killed after the test."""
    started: list[SSHD] = []

    def make(addresses: list[str] | None = None, **kw: Any) -> SSHD:
        s = start_sshd(tmp_path_factory.mktemp("sshd-extra"), addresses, **kw)
        started.append(s)
        return s

    try:
        yield make
    finally:
        for s in started:
            s.kill_all()
        for s in started:
            shutil.rmtree(s.workdir, ignore_errors=True)


@pytest.fixture
def ssh_server(engine, keyring, sshd: SSHD) -> str:
    """The session sshd registered (host key pinned) as server `t1` in this test's database."""
    return register_sshd(engine, keyring, sshd, "t1")
