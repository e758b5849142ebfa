"""`HostPool`: one open Host per server for the life of a command, shared by threads.

The pool knows nothing about the inventory: it is given a `connect(name, early_socket)`
factory (the fleet service builds SSH parameters from stored records) and, to start
early, the addresses to open TCP connections to while the caller is still busy.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future

from vpsagent.remote.base import Host

Connect = Callable[[str, "Future[socket.socket] | None"], Host]


class HostPool:
    """Each server's Host is opened once, on first use, and closed with the pool."""

    def __init__(self, connect: Connect, *, connect_timeout: float) -> None:
        self._connect = connect
        self.connect_timeout = connect_timeout
        self._early: dict[str, Future[socket.socket]] = {}
        self._hosts: dict[str, Host] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Host:
        with self._lock:
            host = self._hosts.get(name)
            early = self._early.pop(name, None) if host is None else None
        if host is not None:
            return host
        host = self._connect(name, early)
        with self._lock:
            # another thread may have opened it meanwhile: keep the first
            kept = self._hosts.setdefault(name, host)
        if kept is not host:
            host.close()
        return kept

    def warm(self, targets: Sequence[tuple[str, str, int]]) -> None:
        """Open TCP connections to (name, host, port) now, before records and keys are ready.

        sshd spends its share of a connection (fork, re-exec, host keys) while we are
        still reading the inventory and deriving the key: for a fan-out over many
        servers that overlap is most of the difference to a bare Fabric script.
        """
        from concurrent.futures import ThreadPoolExecutor

        from vpsagent.remote.ssh import open_socket

        todo = [(n, h, p) for n, h, p in targets if n not in self._early]
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


def _close_socket(fut: Future[socket.socket]) -> None:
    if fut.exception() is None:
        fut.result().close()
