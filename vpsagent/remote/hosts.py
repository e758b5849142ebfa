"""Resolving server names to Hosts: selection (-s/-t/--all), SSH parameters from the
inventory, trust-on-first-use pinning, and `HostPool` (one connection per server).
"""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from vpsagent.errors import InvalidInput, NotFound, UsageError
from vpsagent.services.servers import LOCAL

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from vpsagent.remote.base import Host
    from vpsagent.remote.ssh import HostKeyEvent, SSHParams
    from vpsagent.services.servers import ServerRecord
    from vpsagent.settings import Settings

Notify = Callable[[str], None]
DEFAULT_CONNECT_TIMEOUT = 10.0
MAX_JUMPS = 8


def select_servers(engine: Engine, names: Sequence[str] = (), tags: Sequence[str] = (),
                   all_: bool = False, *, how: str = "-s NAME, -t TAG or --all") -> list[str]:
    """Names chosen by -s/-t/--all, in a stable order; unknown names or empty tags are errors.

    `how` is how the calling command spells the choice, for the error when nothing was chosen.
    """
    from vpsagent.services.servers import server_tags

    inventory = server_tags(engine)
    chosen: list[str] = []
    for n in names:
        if n not in inventory:
            raise NotFound(f"unknown server {n!r}", hint="`vpsagent servers list` shows the inventory")
        if n not in chosen:
            chosen.append(n)
    for t in tags:
        matched = [n for n, ts in inventory.items() if t in ts]
        if not matched:
            raise NotFound(f"no server has tag {t!r}")
        chosen += [n for n in matched if n not in chosen]
    if all_:
        chosen += [n for n in inventory if n != LOCAL and n not in chosen]
        if not chosen:
            raise NotFound("the inventory has no servers yet", hint="add one with `vpsagent servers add`")
    if not chosen:
        raise UsageError(f"choose servers with {how}")
    return chosen


def _stderr_notify(message: str) -> None:
    # Trust on first use must never be silent: when the caller gave no channel for
    # messages, the new fingerprint still reaches the user on stderr.
    print(f"vpsagent: {message}", file=sys.stderr, flush=True)


def pinning_callback(engine: Engine, notify: Notify | None,
                     also: Callable[[HostKeyEvent], None] | None = None) -> Callable[[HostKeyEvent], None]:
    """Stores a learnt host key in the inventory and tells the user."""
    from vpsagent.services.servers import pin_host_key

    say = notify or _stderr_notify

    def on_host_key(ev: HostKeyEvent) -> None:
        key_type, key_b64 = ev.key.split()[:2]
        pin_host_key(engine, ev.server, key_type, key_b64, ev.fingerprint)
        if also is not None:
            also(ev)
        if ev.kind == "pinned":
            say(f"{ev.server}: first contact, pinned host key {key_type} {ev.fingerprint}")
        else:
            say(f"{ev.server}: host key replaced: {ev.old_fingerprint} -> {ev.fingerprint}")

    return on_host_key


def ssh_params(
    settings: Settings,
    engine: Engine,
    record: ServerRecord,
    *,
    load: Callable[[str], ServerRecord],
    on_host_key: Callable[[HostKeyEvent], None] | None,
    trust_on_first_use: bool = True,
    replace_host_key: bool = False,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    _depth: int = 0,
) -> SSHParams:
    """SSH connection parameters for an inventory record (secrets stay in memory)."""
    import getpass

    from vpsagent.remote.keys import load_pkey
    from vpsagent.remote.ssh import SSHParams

    if _depth > MAX_JUMPS:
        raise InvalidInput(f"{record.name}: the jump-host chain is longer than {MAX_JUMPS} (a loop?)")
    pkey = None
    if record.private_key is not None:
        pkey = load_pkey(record.private_key.reveal_bytes(),
                         record.key_passphrase.reveal_str() if record.key_passphrase else None)
    gateway = None
    if record.jump:
        if record.jump == LOCAL:
            raise InvalidInput(f"{record.name}: 'local' cannot be a jump host")
        gateway = ssh_params(settings, engine, load(record.jump), load=load, on_host_key=on_host_key,
                             trust_on_first_use=trust_on_first_use, connect_timeout=connect_timeout,
                             _depth=_depth + 1)
    host_key = f"{record.host_key_type} {record.host_key}" if record.host_key and record.host_key_type else None
    return SSHParams(
        host=record.host,
        port=record.port,
        user=record.user or getpass.getuser(),
        pkey=pkey,
        password=record.password,
        # "agent": only the agent; "default": what ssh would try (agent, then ~/.ssh keys)
        allow_agent=record.auth in ("agent", "default"),
        look_for_keys=record.auth == "default",
        sudo_password=record.sudo_password,
        host_key=host_key,
        trust_on_first_use=trust_on_first_use,
        replace_host_key=replace_host_key,
        on_host_key=on_host_key,
        gateway=gateway,
        gateway_name=record.jump,
        connect_timeout=connect_timeout,
        name=record.name,
        tags=list(record.tags),
    )


def open_host(
    settings: Settings,
    engine: Engine,
    name: str,
    *,
    keyring: Any = None,
    keyring_get: Callable[[], Any] | None = None,
    notify: Notify | None = None,
    trust_on_first_use: bool = True,
    replace_host_key: bool = False,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    on_host_key: Callable[[HostKeyEvent], None] | None = None,
    records: Mapping[str, ServerRecord] | None = None,
    early_socket: Future[socket.socket] | None = None,
) -> Host:
    """A Host for `name`. SSH connects lazily, on the first command (or `.connect()`).

    The keyring is only opened when the server (or its jump host) has stored secrets.
    A host key learnt on first contact is pinned in the inventory and announced
    through `notify` (stderr when not given), then passed to `on_host_key`.
    `replace_host_key` accepts a changed key (`servers check --update-host-key`).
    `records` are already loaded inventory records to use instead of reading them
    again; `early_socket` a TCP connection to the server opened ahead of time.
    """
    from vpsagent.services.servers import has_secrets, load_server

    if name == LOCAL:
        from vpsagent.remote.local import LocalHost

        return LocalHost()

    cache: dict[str, Any] = {"keyring": keyring}

    def get_keyring() -> Any:
        if cache["keyring"] is None:
            if keyring_get is not None:
                cache["keyring"] = keyring_get()
            else:
                from vpsagent.services.vault import get_keyring as _get

                cache["keyring"] = _get(settings, engine, notify or _stderr_notify)
        return cache["keyring"]

    def load(n: str) -> ServerRecord:
        if records is not None and n in records:
            return records[n]
        return load_server(engine, get_keyring() if has_secrets(engine, n) else None, n)

    from vpsagent.remote.ssh import SSHHost

    params = ssh_params(settings, engine, load(name), load=load,
                        on_host_key=pinning_callback(engine, notify, on_host_key),
                        trust_on_first_use=trust_on_first_use, replace_host_key=replace_host_key,
                        connect_timeout=connect_timeout)
    if early_socket is not None and params.gateway is None:
        params.early_socket = early_socket
    return SSHHost(params)


class HostPool:
    """One open Host per server for the life of a command (`run`, `ask`, `test`).

    Thread-safe: fan-out workers share it; each server's Host is opened once. Use it
    as a context manager so every connection is closed at the end.
    """

    def __init__(self, settings: Settings, engine: Engine, *, keyring_get: Callable[[], Any] | None = None,
                 notify: Notify | None = None, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
                 records: Mapping[str, ServerRecord] | None = None):
        self.settings = settings
        self.records = dict(records or {})
        self._early: dict[str, Future[socket.socket]] = {}
        self.engine = engine
        self.notify = notify
        self.connect_timeout = connect_timeout
        self._keyring_get = keyring_get
        self._keyring: Any = None
        self._hosts: dict[str, Host] = {}
        self._lock = threading.Lock()
        self._klock = threading.Lock()

    def _get_keyring(self) -> Any:
        with self._klock:
            if self._keyring is None:
                if self._keyring_get is not None:
                    self._keyring = self._keyring_get()
                else:
                    from vpsagent.services.vault import get_keyring

                    self._keyring = get_keyring(self.settings, self.engine, self.notify or _stderr_notify)
            return self._keyring

    def get(self, name: str) -> Host:
        with self._lock:
            host = self._hosts.get(name)
        if host is not None:
            return host
        with self._lock:
            early = self._early.pop(name, None)
        host = open_host(self.settings, self.engine, name, keyring_get=self._get_keyring,
                         notify=self.notify, connect_timeout=self.connect_timeout,
                         records=self.records, early_socket=early)
        with self._lock:
            # another thread may have opened it meanwhile: keep the first
            return self._hosts.setdefault(name, host)

    __call__ = get  # a pool is an `open_host(name) -> Host` callable

    def warm(self, targets: Sequence[tuple[str, str, int]]) -> None:
        """Open TCP connections to (name, host, port) now, before records and keys are ready.

        sshd spends its share of a connection (fork, re-exec, host keys) while we are
        still reading the inventory and deriving the key: for a fan-out over many
        servers that overlap is most of the difference to a bare Fabric script.
        """
        from concurrent.futures import ThreadPoolExecutor

        from vpsagent.remote.ssh import open_socket

        todo = [(n, h, p) for n, h, p in targets if n != LOCAL and n not in self._early]
        if not todo:
            return
        ex = ThreadPoolExecutor(max_workers=min(64, len(todo)), thread_name_prefix="warm")
        with self._lock:
            for n, h, p in todo:
                self._early[n] = ex.submit(open_socket, n, h, p, self.connect_timeout)
        ex.shutdown(wait=False)

    def hosts(self) -> list[Host]:
        with self._lock:
            return list(self._hosts.values())

    def interrupt(self) -> None:
        """Ask every running command to stop (Ctrl-C during a fan-out)."""
        for h in self.hosts():
            stop = getattr(h, "interrupt", None)
            if stop is not None:
                stop()

    def close(self) -> None:
        with self._lock:
            hosts, self._hosts = list(self._hosts.values()), {}
            early, self._early = list(self._early.values()), {}
        for fut in early:  # warmed but never used (skipped servers, errors)
            fut.add_done_callback(_close_socket)
        for h in hosts:
            try:
                h.close()
            except Exception:  # noqa: BLE001 - closing must not hide the command's result
                pass

    def __enter__(self) -> HostPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _close_socket(fut: Future[socket.socket]) -> None:
    if fut.exception() is None:
        fut.result().close()
