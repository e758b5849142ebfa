"""`SSHHost`: the `Host` interface over SSH.

Fabric's `Connection` does what it is good at — authentication (key object, password,
ssh-agent), ProxyJump through a gateway connection, SFTP — and we do the rest:

- Host keys are checked against the key pinned in the inventory, never AutoAddPolicy.
  No pinned key → trust on first use (the caller is told through `on_host_key` and
  pins it); a different key → `HostKeyMismatch` with both SHA256 fingerprints.
- Commands stream straight from the paramiko channel. Fabric/invoke's `run()` re-joins
  its whole buffer after every read (quadratic: 16 MiB took 25 s) and paramiko does not
  set TCP_NODELAY (every command on a reused connection stalled ~40 ms).
- Local stdin is never forwarded (the remote side gets EOF at once), nothing is echoed:
  output only reaches the caller's callbacks and the bounded capture.
- A timed-out or interrupted command is stopped: an SSH `signal` request (sshd delivers
  it to the command's process group), then the channel is closed.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import select
import shlex
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeAlias

from vpsagent import errors
from vpsagent.remote.base import (
    DEFAULT_CAPTURE,
    BoundedCapture,
    CommandResult,
    OutputCallback,
)
from vpsagent.secret import Secret

if TYPE_CHECKING:  # pragma: no cover
    import paramiko

    # What paramiko hands a transport factory as the socket: ours, or a gateway's channel.
    _Sock: TypeAlias = socket.socket | paramiko.Channel | paramiko.ProxyCommand

# Reads take everything buffered (paramiko's buffer is an array whose front-deletion is
# a memmove, so partial reads of a big backlog are quadratic). The window stays at
# paramiko's 2 MiB: a bigger one lets that backlog grow and measured slower.
READ_CHUNK = 1024 * 1024
WINDOW_SIZE = 2 * 1024 * 1024
UPLOAD_CHUNK = 1024 * 1024  # per sendall of an upload; paramiko splits it into packets
UPLOAD_STATUS_WAIT = 600.0  # for `mv` to answer after the last byte (a slow disk flushing)
# How often a waiting command checks its deadline and interrupt flag. Data wakes the
# loop at once; this only bounds how late a timeout or interrupt is noticed.
TICK_S = 0.2
# After asking the remote command to stop (TERM), how long before KILL and close.
STOP_GRACE_S = 1.0
# The first stderr line of every command: the remote shell's pid (see SSHHost._wrap).
PID_MARKER = b"vpsagent-pid:"
# paramiko renegotiates keys by itself after 512 MiB either way, at whatever moment the
# count is crossed. When that is just before the server closes a finished command's
# channel, paramiko's reader thread blocks sending its own close until the key exchange
# it is itself meant to carry on has finished: a 30 s stall, then the connection dies
# (paramiko#822). So we switch that trigger off on our connections and renegotiate
# ourselves at the same threshold, between commands, when no command channel is open to
# be closed under us. The server may still start a key exchange at any time; that one is
# safe (it sends nothing else until the exchange is done).
REKEY_OFF = 2**62
REKEY_WAIT_S = 60.0  # for the server to finish a key exchange we asked for
# GCM needs no separate MAC pass: the fastest cipher paramiko speaks with OpenSSH.
PREFERRED_CIPHERS = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
)


def fingerprint(key_blob: bytes) -> str:
    """OpenSSH's SHA256 fingerprint of a public key blob (`ssh-keygen -l -E sha256`)."""
    digest = hashlib.sha256(key_blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def key_line_fingerprint(key_line: str) -> str:
    """Fingerprint of a "type base64" public key line."""
    parts = key_line.split()
    if len(parts) < 2:
        raise errors.InvalidInput(f"not a public key line: {key_line[:40]!r}")
    return fingerprint(base64.b64decode(parts[1]))


@dataclass(frozen=True)
class HostKeyEvent:
    """What `on_host_key` is told after a successful connect that learnt a key."""

    server: str
    kind: str  # "pinned" (first contact) | "replaced" (changed, replacement asked for)
    key: str  # "type base64", the line to store
    fingerprint: str
    old_fingerprint: str | None = None


@dataclass
class SSHParams:
    """Everything needed to reach one server. Secrets stay `Secret` until paramiko."""

    host: str
    port: int = 22
    user: str = ""
    pkey: paramiko.PKey | None = None  # remote.keys.load_pkey: in memory, never a temp file
    password: Secret | None = None
    allow_agent: bool = False
    look_for_keys: bool = False  # also try ~/.ssh/id_* (auth kind "default")
    sudo_password: Secret | None = None
    host_key: str | None = None  # pinned "type base64"; None = first contact
    trust_on_first_use: bool = True
    replace_host_key: bool = False  # `servers check --update-host-key`
    on_host_key: Callable[[HostKeyEvent], None] | None = None
    gateway: SSHParams | None = None  # ProxyJump
    gateway_name: str | None = None
    connect_timeout: float = 10.0
    keepalive_s: int = 30
    early_socket: Future[socket.socket] | None = None  # opened ahead (HostPool.warm)
    name: str = ""


def _quiet_paramiko() -> None:
    # paramiko logs transport errors at ERROR; with no handler configured Python's
    # last-resort handler would print them to stderr behind the caller's back.
    for name in ("paramiko", "fabric", "invoke"):
        lg = logging.getLogger(name)
        if not any(isinstance(h, logging.NullHandler) for h in lg.handlers):
            lg.addHandler(logging.NullHandler())
        lg.propagate = False


@dataclass
class _Learnt:
    """The host key a connection trusted on first use (None: it matched the pinned one)."""

    key: paramiko.PKey | None = None


def _pin_policy(server: str, tofu: bool, learnt: _Learnt) -> paramiko.MissingHostKeyPolicy:
    """The policy paramiko asks when no key is pinned: trust on first use, or refuse."""
    import paramiko  # on first connect, not when this module is imported

    class PinPolicy(paramiko.MissingHostKeyPolicy):
        def missing_host_key(self, client: paramiko.SSHClient, hostname: str,
                             key: paramiko.PKey) -> None:
            if not tofu:
                raise errors.HostKeyUnknown(
                    f"{server}: no host key pinned and trust on first use is off "
                    f"(server offered {fingerprint(key.asbytes())})",
                    hint=f"vpsagent servers check {server}",
                )
            learnt.key = key

    return PinPolicy()


def _transport_factory(sock: _Sock, **kw: object) -> paramiko.Transport:
    import paramiko

    # paramiko 3 passes gss_kex/gss_deleg_creds/disabled_algorithms, paramiko 5 only
    # disabled_algorithms: hand on whatever this version passes, as Transport takes it.
    t = paramiko.Transport(sock, default_window_size=WINDOW_SIZE, **kw)  # type: ignore[arg-type]  # keywords vary by paramiko version (see above)
    opts = t.get_security_options()
    offered = set(opts.ciphers)
    opts.ciphers = tuple(c for c in PREFERRED_CIPHERS if c in offered) + tuple(
        c for c in opts.ciphers if c not in PREFERRED_CIPHERS
    )
    return t


def open_socket(name: str, host: str, port: int, timeout: float) -> socket.socket:
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except TimeoutError as e:
        raise errors.Unreachable(
            f"{name}: {host}:{port} did not answer within {timeout:g}s"
        ) from e
    except ConnectionRefusedError as e:
        raise errors.Unreachable(f"{name}: connection refused by {host}:{port}") from e
    except socket.gaierror as e:
        raise errors.Unreachable(f"{name}: cannot resolve host {host!r}") from e
    except OSError as e:
        raise errors.Unreachable(f"{name}: cannot connect to {host}:{port}: {e.strerror or e}") from e
    # Without it each small request waits for the previous segment's ACK (~40 ms).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class _FabricConnection(Protocol):
    """What we use of fabric's `Connection` (fabric publishes no types)."""

    client: paramiko.SSHClient
    transport: paramiko.Transport | None  # set by open(); kept (inactive) after close()

    def open(self) -> object: ...

    def close(self) -> None: ...

    def sftp(self) -> paramiko.SFTPClient: ...


class _Conn:
    """One open Fabric connection plus what we learnt while opening it."""

    def __init__(self, conn: _FabricConnection, learnt: _Learnt, gateway: _Conn | None):
        self.conn = conn
        self.learnt = learnt
        self.gateway = gateway

    @property
    def transport(self) -> paramiko.Transport | None:
        return self.conn.transport

    def close(self) -> None:
        try:
            self.conn.close()
        finally:
            if self.gateway is not None:
                self.gateway.close()


def _connect(params: SSHParams, label: str) -> _Conn:
    """Open and authenticate; map every failure to one clear VpsAgentError."""
    import paramiko
    from fabric import Config, Connection

    _quiet_paramiko()
    gw: _Conn | None = None
    if params.gateway is not None:
        gw = _via(params.gateway, params.gateway_name or params.gateway.host, label)
    # An empty ssh_config: the inventory is the source of truth (`servers import` reads
    # ~/.ssh/config once); stray IdentityFile/GSSAPI lines must not change behaviour.
    config = Config(ssh_config=paramiko.SSHConfig(), lazy=True)
    conn: _FabricConnection = Connection(
        params.host,
        user=params.user or None,
        port=params.port,
        config=config,
        gateway=gw.conn if gw is not None else None,
        connect_timeout=params.connect_timeout,
        connect_kwargs=_connect_kwargs(params, label, direct=gw is None),
    )
    learnt = _Learnt()
    _pin_host_key(conn, params, label, learnt)
    _open(conn, gw, params, label)
    transport = conn.transport
    assert transport is not None  # open() succeeded
    transport.packetizer.REKEY_BYTES = transport.packetizer.REKEY_PACKETS = REKEY_OFF  # see REKEY_OFF
    if params.keepalive_s:
        transport.set_keepalive(params.keepalive_s)
    if learnt.key is not None and params.on_host_key is not None:
        _report_learnt_key(learnt.key, params, label, params.on_host_key)
    return _Conn(conn, learnt, gw)


def _via(gateway: SSHParams, gw_label: str, label: str) -> _Conn:
    """Connect to the jump host; its failure names the server the user asked for too
    ("web1: via jump host bastion: ..."), or the user hunts for a server they never named."""
    try:
        return _connect(gateway, gw_label)
    except errors.VpsAgentError as exc:
        exc.message = f"{label}: via jump host {exc.message}"
        raise


def _connect_kwargs(params: SSHParams, label: str, *, direct: bool) -> dict[str, object]:
    """What paramiko's SSHClient.connect is given: credentials, time limits, the socket.

    `direct`: no gateway, so we hand paramiko the TCP socket (opened ahead by
    HostPool.warm, or now); through a gateway, fabric opens the channel itself.
    """
    kwargs: dict[str, object] = {
        "look_for_keys": params.look_for_keys,
        "allow_agent": params.allow_agent,
        "banner_timeout": params.connect_timeout,
        "auth_timeout": params.connect_timeout,
        "channel_timeout": params.connect_timeout,
        "transport_factory": _transport_factory,
    }
    if params.pkey is not None:
        kwargs["pkey"] = params.pkey
    if params.password:
        kwargs["password"] = params.password.reveal_str()
    if direct:
        early, params.early_socket = params.early_socket, None  # one use only
        kwargs["sock"] = (early.result() if early is not None else
                          open_socket(label, params.host, params.port, params.connect_timeout))
    return kwargs


def _pin_host_key(conn: _FabricConnection, params: SSHParams, label: str, learnt: _Learnt) -> None:
    """Check the server's key against the pinned one, never AutoAddPolicy (fabric's default)."""
    conn.client.set_missing_host_key_policy(_pin_policy(label, params.trust_on_first_use, learnt))
    if params.host_key and not params.replace_host_key:
        pinned = _parse_key_line(params.host_key)
        keyname = params.host if params.port == 22 else f"[{params.host}]:{params.port}"
        conn.client.get_host_keys().add(keyname, pinned.get_name(), pinned)


def _open(conn: _FabricConnection, gw: _Conn | None, params: SSHParams, label: str) -> None:
    """conn.open(), with each way it can fail said in one line (and the connection closed)."""
    import paramiko

    where = f"{params.host}:{params.port}"
    try:
        conn.open()
    except errors.VpsAgentError:
        _close_quietly(conn, gw)
        raise
    except paramiko.BadHostKeyException as e:
        _close_quietly(conn, gw)
        got = fingerprint(e.key.asbytes())
        want = fingerprint(e.expected_key.asbytes())
        raise errors.HostKeyMismatch(
            f"{label}: HOST KEY CHANGED for {where}: pinned {want}, server offered {got}",
            hint=f"if the change is expected: vpsagent servers check {label} --update-host-key",
            data={"pinned_fingerprint": want, "offered_fingerprint": got},
        ) from e
    except paramiko.AuthenticationException as e:
        _close_quietly(conn, gw)
        raise errors.SSHAuthFailed(
            f"{label}: authentication failed for {params.user or '?'}@{where} ({e})",
            hint=f"check the stored credentials: vpsagent servers show {label}",
        ) from e
    except (paramiko.SSHException, EOFError) as e:
        _close_quietly(conn, gw)
        if "No authentication methods available" in str(e):
            # paramiko's word for "no credential to offer" (no stored key or password,
            # and the ssh-agent is absent or empty)
            raise errors.SSHAuthFailed(
                f"{label}: no credentials to log in to {params.user or '?'}@{where}"
                + (" (is ssh-agent running with the key loaded? SSH_AUTH_SOCK)" if params.allow_agent else ""),
                hint=f"store a key: vpsagent servers edit {label} --key KEYFILE",
            ) from e
        raise errors.Unreachable(f"{label}: SSH handshake with {where} failed: {e}") from e
    except TimeoutError as e:
        _close_quietly(conn, gw)
        raise errors.Unreachable(f"{label}: {where} timed out during the SSH handshake") from e
    except OSError as e:
        _close_quietly(conn, gw)
        raise errors.Unreachable(f"{label}: cannot connect to {where}: {e.strerror or e}") from e


def _report_learnt_key(key: paramiko.PKey, params: SSHParams, label: str,
                       on_host_key: Callable[[HostKeyEvent], None]) -> None:
    """Tell the caller about a key learnt on first contact (or replaced on request) to pin."""
    line = f"{key.get_name()} {key.get_base64()}"
    old_fp = key_line_fingerprint(params.host_key) if params.host_key else None
    new_fp = fingerprint(key.asbytes())
    if old_fp != new_fp:
        kind = "replaced" if params.host_key else "pinned"
        on_host_key(HostKeyEvent(label, kind, line, new_fp, old_fp))


def _parse_key_line(line: str) -> paramiko.PKey:
    import paramiko

    parts = line.split()
    try:
        return paramiko.PKey.from_type_string(parts[0], base64.b64decode(parts[1]))
    except Exception as e:  # noqa: BLE001 - any parse failure is a corrupt record
        raise errors.InvalidInput(f"the pinned host key is unreadable: {line[:40]!r}") from e


def _close_quietly(conn: _FabricConnection, gw: _Conn | None) -> None:
    try:
        conn.close()
    except Exception:  # noqa: BLE001 - already failing; the first error is the one to report
        pass
    if gw is not None:
        try:
            gw.close()
        except Exception:  # noqa: BLE001
            pass


def _send_signal(chan: paramiko.Channel, name: str) -> None:
    """RFC 4254 §6.9 `signal` request (paramiko has no public call for it).

    OpenSSH's sshd delivers it with killpg() to the session's process group, so a
    pipeline or a shell's children stop too.
    """
    from paramiko.common import cMSG_CHANNEL_REQUEST
    from paramiko.message import Message

    transport = chan.transport
    if chan.closed or transport is None:
        return
    m = Message()
    m.add_byte(cMSG_CHANNEL_REQUEST)
    m.add_int(chan.remote_chanid)
    m.add_string("signal")
    m.add_boolean(False)
    m.add_string(name)
    try:
        transport._send_user_message(m)  # type: ignore[attr-defined]  # private paramiko call, absent from its stubs
    except Exception:  # noqa: BLE001 - the connection may already be gone
        pass


class _PidLine:
    """Takes the `PID_MARKER<pid>` line off the front of stderr."""

    def __init__(self) -> None:
        self.pending = b""
        self.done = False
        self.pid: int | None = None

    def filter(self, data: bytes) -> bytes:
        if self.done:
            return data
        buf = self.pending + data
        nl = buf.find(b"\n")
        if nl < 0 and len(buf) < 64:
            self.pending = buf
            return b""
        self.done = True
        self.pending = b""
        line = buf[:nl] if nl >= 0 else b""
        if line.startswith(PID_MARKER) and line[len(PID_MARKER):].isdigit():
            self.pid = int(line[len(PID_MARKER):])
            return buf[nl + 1:]
        return buf

    def flush(self) -> bytes:
        self.done = True
        rest, self.pending = self.pending, b""
        return rest


# Why a command run with --sudo failed, when sudo itself refused: what the user is told.
_SUDO_FAILURES = {
    "sudo_rejected": "sudo rejected the stored sudo password (store the right one: "
                     "`vpsagent servers edit {name} --sudo-password-stdin`)",
    "sudo_needs_password": "sudo needs a password and none is stored for {name} "
                           "(`vpsagent servers edit {name} --sudo-password-stdin`)",
}
# What `sudo -n` prints when it would have to ask (stable across sudo versions since 1.8).
_SUDO_NEEDS_PASSWORD = b"sudo: a password is required"


def _sudo_failure(sudo: bool, params: SSHParams, stream: _Streams, code: int, err: BoundedCapture) -> str | None:
    """`sudo_rejected` / `sudo_needs_password` when sudo refused to run the command."""
    if stream.sudo is not None and stream.sudo.rejected:
        return "sudo_rejected"
    if sudo and stream.sudo is None and params.user != "root" and code == 1 and _SUDO_NEEDS_PASSWORD in err.value():
        return "sudo_needs_password"
    return None


class _SudoPrompt:
    """Answers sudo's password prompt once, hides the prompt from stderr.

    sudo is run with `-p MARKER`; the stored password is written to the channel only
    when MARKER appears on stderr (never blindly: a command that reads stdin must not
    see it). A second prompt means the password was rejected: stdin is closed so sudo
    fails instead of waiting.
    """

    def __init__(self, chan: paramiko.Channel, password: Secret, marker: bytes):
        self.chan = chan
        self.password = password
        self.marker = marker
        self.pending = b""
        self.answered = False
        self.rejected = False

    def filter(self, data: bytes) -> bytes:
        buf = self.pending + data
        out = b""
        while True:
            i = buf.find(self.marker)
            if i < 0:
                break
            out += buf[:i]
            buf = buf[i + len(self.marker):]
            if not self.answered:
                self.answered = True
                self.chan.sendall(self.password.reveal_bytes() + b"\n")
            else:
                self.rejected = True
            self.chan.shutdown_write()
        # keep a possible partial marker at the end for the next chunk
        keep = 0
        for k in range(min(len(self.marker) - 1, len(buf)), 0, -1):
            if self.marker.startswith(buf[-k:]):
                keep = k
                break
        if keep:
            out += buf[:-keep]
            self.pending = buf[-keep:]
        else:
            out += buf
            self.pending = b""
        return out

    def flush(self) -> bytes:
        rest, self.pending = self.pending, b""
        return rest


class _Streams:
    """Reads one channel's stdout and stderr into captures and callbacks."""

    def __init__(self, chan: paramiko.Channel, out: BoundedCapture, err: BoundedCapture,
                 on_stdout: OutputCallback | None, on_stderr: OutputCallback | None):
        self.chan = chan
        self.out = out
        self.err = err
        self.on_stdout = on_stdout
        self.on_stderr = on_stderr
        self.pid = _PidLine()
        self.sudo: _SudoPrompt | None = None

    def read_some(self) -> bool:
        chan = self.chan
        got = False
        if chan.recv_ready():
            data = chan.recv(READ_CHUNK)
            if data:
                got = True
                self.out.feed(data)
                if self.on_stdout is not None:
                    self.on_stdout(data)
        if chan.recv_stderr_ready():
            data = chan.recv_stderr(READ_CHUNK)
            if data:
                got = True
                self._stderr(self.pid.filter(data))
        return got

    def _stderr(self, data: bytes) -> None:
        if data and self.sudo is not None:
            data = self.sudo.filter(data)
        if data:
            self.err.feed(data)
            if self.on_stderr is not None:
                self.on_stderr(data)

    def await_pid(self, timeout: float) -> int | None:
        """The remote shell's pid, reading stderr for it if it has not been seen yet.

        Needed when we must stop a command whose pid line is still unread (the caller's
        output callback failed on the first stdout chunk). Stderr read here goes to
        the capture only: the caller's callbacks are not called any more.
        """
        deadline = time.monotonic() + timeout
        while not self.pid.done and time.monotonic() < deadline:
            if self.chan.recv_stderr_ready():
                rest = self.pid.filter(self.chan.recv_stderr(READ_CHUNK))
                if rest:
                    self.err.feed(rest)
            elif self.chan.closed or self.chan.eof_received:
                break
            else:
                time.sleep(0.01)
        return self.pid.pid

    def flush(self) -> None:
        self._stderr(self.pid.flush())
        if self.sudo is not None:
            rest = self.sudo.flush()
            if rest:
                self.err.feed(rest)
                if self.on_stderr is not None:
                    self.on_stderr(rest)


class SSHHost:
    """A server reached over SSH. One connection, opened lazily, reused by every call."""

    def __init__(self, params: SSHParams):
        self.params = params
        self._name = params.name or params.host
        self._lock = threading.Lock()
        self._conn: _Conn | None = None
        self._interrupt = threading.Event()
        self._since_kex = 0  # bytes moved on this connection since its last key exchange

    @property
    def name(self) -> str:
        return self._name

    # -- connection ---------------------------------------------------------
    def connect(self) -> None:
        """Open the connection now (otherwise the first command does)."""
        self._transport()

    def _transport(self) -> paramiko.Transport:
        with self._lock:
            if self._conn is not None and self._conn.transport is not None and self._conn.transport.is_active():
                return self._conn.transport
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self._conn = _connect(self.params, self.name)
            self._since_kex = 0
            transport = self._conn.transport
            assert transport is not None  # _connect returns an open connection
            return transport

    def _drop(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                except Exception:  # noqa: BLE001
                    pass
                self._conn = None

    def host_key_fingerprint(self) -> str | None:
        """Fingerprint of the key the open connection's server presented."""
        if self._conn is None or self._conn.transport is None:
            return None
        return fingerprint(self._conn.transport.get_remote_server_key().asbytes())

    def host_key_line(self) -> str | None:
        if self._conn is None or self._conn.transport is None:
            return None
        k = self._conn.transport.get_remote_server_key()
        return f"{k.get_name()} {k.get_base64()}"

    def interrupt(self) -> None:
        """Stop the running command (from another thread: Ctrl-C in a fan-out)."""
        self._interrupt.set()

    def close(self) -> None:
        self._drop()

    def _moved(self, n: int) -> None:
        self._since_kex += n

    def _rekey_if_due(self, transport: paramiko.Transport) -> None:
        """Renegotiate keys once paramiko would have (see REKEY_OFF), now that no command
        channel is open. A server that does not finish the exchange costs the connection:
        it is dropped, and the caller's next step reconnects."""
        from paramiko.packet import Packetizer

        if self._since_kex < Packetizer.REKEY_BYTES:  # paramiko's threshold (512 MiB), read as set
            return
        failed: list[BaseException] = []

        def exchange() -> None:
            try:
                transport.renegotiate_keys()
            except Exception as e:  # noqa: BLE001 - reported below as a dropped connection
                failed.append(e)

        worker = threading.Thread(target=exchange, name=f"vpsagent-rekey-{self.name}", daemon=True)
        worker.start()
        worker.join(REKEY_WAIT_S)
        self._since_kex = 0
        if failed or worker.is_alive():
            self._drop()  # renegotiate_keys ends when the transport closes

    def _open_channel(self) -> paramiko.Channel:
        import paramiko

        for attempt in (1, 2):
            transport = self._transport()
            self._rekey_if_due(transport)
            transport = self._transport()  # a new one if the key exchange failed
            try:
                return transport.open_session(
                    window_size=WINDOW_SIZE, timeout=self.params.connect_timeout
                )
            except (paramiko.SSHException, EOFError, OSError) as e:
                # A pooled connection that died while idle: reconnect once. The
                # command has not started, so retrying cannot run it twice.
                self._drop()
                if attempt == 2:
                    raise errors.Unreachable(f"{self.name}: cannot open a session: {e}") from e
        raise AssertionError("unreachable")

    # -- commands -----------------------------------------------------------
    def _wrap(self, command: str, sudo: bool) -> tuple[str, bytes | None]:
        """The command line sent to the login shell, and the sudo prompt marker if any.

        The first line reports the shell's pid on stderr (stripped again by `_PidLine`):
        sshd starts every command in its own session, so that pid is the process group
        we kill on timeout or Ctrl-C. sshd's own `signal` request would do it, but it
        refuses for root logins (no privilege separation after auth).
        """
        pid_line = f"printf '{PID_MARKER.decode()}%d\\n' $$ >&2\n"
        if not sudo or self.params.user == "root":
            return pid_line + command, None
        inner = shlex.quote("exec </dev/null\n" + command)
        if self.params.sudo_password:
            marker = f"[vpsagent-sudo-{secrets.token_hex(8)}]"
            return pid_line + f"sudo -S -p {shlex.quote(marker)} -- sh -c {inner}", marker.encode()
        return pid_line + f"sudo -n -- sh -c {inner}", None

    def run(
        self,
        command: str,
        *,
        timeout: float | None = None,
        sudo: bool = False,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
        capture: int = DEFAULT_CAPTURE,
    ) -> CommandResult:
        self._interrupt.clear()
        start = time.monotonic()
        chan = self._open_channel()
        out = BoundedCapture(capture)
        err = BoundedCapture(capture)
        full, marker = self._wrap(command, sudo)
        stream = _Streams(chan, out, err, on_stdout, on_stderr)
        if marker is not None and self.params.sudo_password:
            stream.sudo = _SudoPrompt(chan, self.params.sudo_password, marker)
        try:
            chan.exec_command(full)
            if stream.sudo is None:
                chan.shutdown_write()  # the remote command sees EOF on stdin at once
            status, error = self._pump(stream, start, timeout)
        except (KeyboardInterrupt, BrokenPipeError):
            # Ctrl-C, or the reader of our output went away (`... | head`): stop the
            # remote command and let the caller decide what that means.
            self._stop(stream)
            raise
        except Exception as e:  # noqa: BLE001 - a broken channel is a result, not a crash
            if not self._conn_alive():
                status, error = "connection_lost", f"connection lost: {e}"
                self._drop()
            else:
                status, error = "error", f"{type(e).__name__}: {e}"
                self._stop(stream)
        exit_code: int | None = None
        error_code: str | None = None
        if status == "ok":
            code = chan.exit_status
            if code is None or code == -1:
                if not self._conn_alive():
                    status = "connection_lost"
                    error = "connection lost: the server closed the connection mid-command"
                    self._drop()
                else:
                    status, error = "failed", "the command ended without an exit status (killed by a signal?)"
            else:
                exit_code = code
                if code != 0:
                    status, error = "failed", f"exit status {code}"
            error_code = _sudo_failure(sudo, self.params, stream, code, err)
            if error_code is not None:
                status, error = "failed", _SUDO_FAILURES[error_code].format(name=self.name)
        try:
            chan.close()
        except Exception:  # noqa: BLE001
            pass
        self._moved(out.total + err.total)
        return CommandResult(
            host=self.name,
            command=command,
            exit_code=exit_code,
            stdout=out.value(),
            stderr=err.value(),
            duration_s=time.monotonic() - start,
            stdout_bytes=out.total,
            stderr_bytes=err.total,
            stdout_sha256=out.sha256,
            stderr_sha256=err.sha256,
            stdout_truncated=out.truncated,
            stderr_truncated=err.truncated,
            status=status,
            error=error,
            error_code=error_code,
        )

    def _conn_alive(self) -> bool:
        c = self._conn
        return c is not None and c.transport is not None and c.transport.is_active()

    def _pump(self, st: _Streams, start: float, timeout: float | None) -> tuple[str, str | None]:
        chan = st.chan
        fd = chan.fileno()  # readable whenever stdout or stderr has data, or on EOF/close
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        deadline = start + timeout if timeout else None
        while True:
            if st.read_some():
                continue
            drained = (chan.eof_received or chan.closed) and not chan.recv_ready() and not chan.recv_stderr_ready()
            if drained:
                st.flush()
                if chan.status_event.is_set():
                    return "ok", None
            if self._interrupt.is_set():
                self._stop(st)
                return "interrupted", "interrupted"
            wait = TICK_S
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._stop(st)
                    return "timeout", f"timed out after {timeout:g}s; the remote command was stopped"
                wait = min(wait, left)
            if drained:
                chan.status_event.wait(wait)
            else:
                poller.poll(wait * 1000)

    def _stop(self, st: _Streams) -> None:
        """Stop the remote command: TERM to its process group, then KILL, then close."""
        chan = st.chan
        if chan.closed:
            return
        _send_signal(chan, "TERM")
        pgid = st.pid.pid if st.pid.done else st.await_pid(STOP_GRACE_S)
        if pgid is not None and self._conn_alive():
            self._kill_group(pgid, "TERM")
        if not chan.status_event.wait(STOP_GRACE_S):
            _send_signal(chan, "KILL")
            if pgid is not None and self._conn_alive():
                self._kill_group(pgid, "KILL")
            chan.status_event.wait(0.2)
        try:
            chan.close()
        except Exception:  # noqa: BLE001
            pass

    def _kill_group(self, pgid: int, sig: str) -> None:
        transport = self._conn.transport if self._conn is not None else None
        if transport is None:  # the connection is gone, and the command with it
            return
        try:
            c = transport.open_session(timeout=self.params.connect_timeout)
            c.exec_command(f"kill -s {sig} -- -{pgid} 2>/dev/null")
            c.shutdown_write()
            c.status_event.wait(self.params.connect_timeout)
            c.close()
        except Exception:  # noqa: BLE001 - best effort; the channel is closed anyway
            pass

    # -- files --------------------------------------------------------------
    def upload(self, path: str, content: bytes, mode: int = 0o600) -> None:
        """Streams `content` into `cat` on an exec channel: for large files about a third
        faster than SFTP's request/ack framing in paramiko (bench/deploy_upload.py), on par
        with scp. Ctrl-C (`interrupt`) stops it between chunks."""
        tmp = f"{path}.vpsagent-{secrets.token_hex(4)}.tmp"
        q = shlex.quote
        command = (f"umask 077 && cat > {q(tmp)} && chmod {mode:o} {q(tmp)} && mv -f {q(tmp)} {q(path)} "
                   f"|| {{ rc=$?; rm -f {q(tmp)}; exit $rc; }}")
        self._interrupt.clear()
        chan = self._open_channel()
        try:
            chan.exec_command(command)
            for i in range(0, len(content), UPLOAD_CHUNK):
                if self._interrupt.is_set():
                    raise errors.Interrupted(f"{self.name}: upload of {path} interrupted")
                chan.sendall(content[i:i + UPLOAD_CHUNK])
            chan.shutdown_write()
            self._moved(len(content))
        except OSError as e:
            if not self._conn_alive():
                self._drop()
                chan.close()
                raise errors.ConnectionLost(f"{self.name}: connection lost during the upload of {path}: {e}") from e
            # the remote side ended first (a missing directory, a full disk): say why below
        try:
            chan.status_event.wait(UPLOAD_STATUS_WAIT)
            code = chan.exit_status
            err = chan.recv_stderr(4096).decode("utf-8", "replace").strip() if chan.recv_stderr_ready() else ""
        finally:
            chan.close()
        if code != 0:
            raise errors.Failure(f"{self.name}: upload of {path} failed (exit {code})" + (f": {err}" if err else ""))

    def _sftp(self) -> paramiko.SFTPClient:
        self._rekey_if_due(self._transport())  # the SFTP channel stays open; no server closes it
        self._transport()
        assert self._conn is not None
        return self._conn.conn.sftp()

    def read_file(self, path: str, max_bytes: int | None = None) -> bytes:
        sftp = self._sftp()
        try:
            with sftp.open(path, "rb") as f:
                f.prefetch()
                data = f.read(max_bytes) if max_bytes is not None else f.read()
                self._moved(len(data))
                return data
        except FileNotFoundError as e:
            raise errors.NotFound(f"{self.name}: {path}: no such file") from e
        except PermissionError as e:
            raise errors.Failure(f"{self.name}: {path}: permission denied") from e
        except OSError as e:
            raise errors.Failure(f"{self.name}: {path}: {e}") from e

    def write_file(self, path: str, content: bytes, mode: int | None = None) -> None:
        sftp = self._sftp()
        # write beside the target and rename: a reader never sees half a file
        tmp = f"{path}.vpsagent-{secrets.token_hex(4)}.tmp"
        try:
            with sftp.open(tmp, "wb") as f:
                f.set_pipelined(True)
                f.write(content)
            self._moved(len(content))
            if mode is not None:
                sftp.chmod(tmp, mode)
            else:
                try:
                    current = sftp.stat(path).st_mode
                    if current is not None:  # None: the server did not say; keep the new file's
                        sftp.chmod(tmp, current & 0o7777)
                except FileNotFoundError:
                    pass
            sftp.posix_rename(tmp, path)
        except OSError as e:
            try:
                sftp.remove(tmp)
            except OSError:
                pass
            if isinstance(e, PermissionError):
                raise errors.Failure(f"{self.name}: {path}: permission denied") from e
            raise errors.Failure(f"{self.name}: {path}: {e}") from e

    # -- interactive use (`vpsagent ssh`, `vpsagent cp`) ------------------------------
    def session_channel(self) -> paramiko.Channel:
        """A new session channel on this connection, for an interactive session."""
        return self._open_channel()

    def transport(self) -> paramiko.Transport:
        """The open transport (connecting first), for port forwarding."""
        return self._transport()

    def sftp(self) -> paramiko.SFTPClient:
        """The SFTP client of this connection (fabric keeps one per connection and closes it with it)."""
        return self._sftp()
