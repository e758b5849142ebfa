"""The fleet: the one place where the inventory meets SSH.

`open_fleet(ctx, selection)` reads the inventory once, resolves the selection (`-s`,
`-t`, `--all`, a plan's servers) once, decrypts each stored record once, and hands out
what every command that touches servers needs:

- `host(name)`: one pooled connection per server (`remote.pool.HostPool`), built from
  the record's connection parameters, with the pinned host key checked (a key learnt
  on first contact is pinned here and announced through `ctx.notify`);
- `run(name, command, source=...)`: the one audited run — a row before the command
  starts, completed after, and the command never runs when that first write fails;
- `redactor`: every stored credential of the inventory plus vpsagent's own secrets and
  the secret-looking patterns, applied to everything written or shown;
- `audit`: the audit log, writing through that redactor.

`run`, `test run`, `ask`, `servers check` use it; support, deploy and apply will too. A
server has two shapes on its way to a socket: the stored `ServerRecord` and the
`SSHParams` built from it here.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from vpsagent import errors
from vpsagent.db.inventory import (
    LOCAL,
    ServerRecord,
    decrypt,
    load_inventory,
    unknown_server,
    with_jump_hosts,
)
from vpsagent.outcomes import CommandStatus
from vpsagent.redact import Redactor
from vpsagent.remote.base import DEFAULT_CAPTURE, CommandResult, Host, OutputCallback
from vpsagent.remote.sandbox import Sandbox
from vpsagent.remote.sandbox import wrap as wrap_in_sandbox
from vpsagent.secret import Secret

if TYPE_CHECKING:
    import socket
    from concurrent.futures import Future

    from vpsagent.crypto import Keyring
    from vpsagent.db.audit import AuditLog
    from vpsagent.remote.pool import HostPool
    from vpsagent.remote.ssh import HostKeyEvent, SSHParams
    from vpsagent.services.context import Context
    from vpsagent.settings import Settings

T = TypeVar("T")
DEFAULT_CONNECT_TIMEOUT = 10.0
MAX_JUMPS = 8
HostKeyCallback = Callable[["HostKeyEvent"], None]


@dataclass(frozen=True)
class Selection:
    """Which servers a command is for, as the user said it."""

    names: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    all: bool = False

    @classmethod
    def of(cls, names: Iterable[str] = (), tags: Iterable[str] = (), all_: bool = False) -> Selection:
        return cls(tuple(names), tuple(tags), all_)

    @property
    def empty(self) -> bool:
        return not (self.names or self.tags or self.all)


def select(inventory: Mapping[str, ServerRecord], selection: Selection, *,
           how: str = "-s NAME, -t TAG or --all") -> list[str]:
    """Names chosen by the selection, in a stable order; unknown names or empty tags are errors.

    `how` is how the calling command spells the choice, for the error when nothing was chosen.
    """
    chosen: list[str] = []
    for n in selection.names:
        if n not in inventory:
            raise unknown_server(n)
        if n not in chosen:
            chosen.append(n)
    for t in selection.tags:
        matched = [n for n, rec in inventory.items() if t in rec.tags]
        if not matched:
            raise errors.NotFound(f"no server has tag {t!r}")
        chosen += [n for n in matched if n not in chosen]
    if selection.all:
        chosen += [n for n in inventory if n != LOCAL and n not in chosen]
        if not chosen:
            raise errors.NotFound("the inventory has no servers yet", hint="add one with `vpsagent servers add`")
    if not chosen:
        raise errors.UsageError(f"choose servers with {how}")
    return chosen


def known_secrets(settings: Settings, records: Iterable[ServerRecord] = ()) -> list[Secret]:
    """The master secret (or the key file's contents), API keys, the SMTP and database
    passwords, and every decrypted credential of `records`."""
    from urllib.parse import urlsplit

    found = [s for s in (settings.secret, settings.anthropic_api_key, settings.github_token, settings.smtp_url)
             if s is not None]
    if settings.secret is None:
        try:
            key = settings.key_file.read_text().strip()
        except OSError:
            key = ""
        if key:
            found.append(Secret(key))
    for url in (settings.smtp_url.reveal_str() if settings.smtp_url else None, settings.database_url):
        try:
            pw = urlsplit(url).password if url else None
        except ValueError:
            pw = None
        if pw:
            found.append(Secret(pw))
    for rec in records:
        found += rec.secrets()
    return found


class Fleet:
    """The chosen servers' records, their connections, the audit log and the redactor."""

    def __init__(self, ctx: Context, names: Sequence[str], records: Mapping[str, ServerRecord], *,
                 connect_timeout: float = DEFAULT_CONNECT_TIMEOUT, on_host_key: HostKeyCallback | None = None,
                 trust_on_first_use: bool = True, replace_host_key: bool = False) -> None:
        from vpsagent.db.audit import AuditLog
        from vpsagent.remote.pool import HostPool

        self.ctx = ctx
        self.names = list(names)  # the servers chosen, in order
        self.records = dict(records)  # every server in the inventory; decrypted by `unlock`
        self._brought: list[Secret] = []  # secrets this command brought (see also_redact)
        self.redactor = Redactor(known_secrets(ctx.settings))
        who = ctx.identity()  # every row says who ran it (and with which API token)
        self.audit: AuditLog = AuditLog(ctx.engine, redact=self.redactor.redact, user_id=who.user_id,
                                        user_email=who.email, token_name=who.token_name)
        self.connect_timeout = connect_timeout
        self._on_host_key = on_host_key
        self._tofu = trust_on_first_use
        self._replace = replace_host_key
        self.pool: HostPool = HostPool(self._connect, connect_timeout=connect_timeout)
        self._sandboxes: dict[str, Sandbox] = {}
        self._sandbox_lock = threading.Lock()
        # A jump host checked with its target is reached twice (as itself, as the
        # gateway): its key is pinned and told once.
        self._told: set[tuple[str, str]] = set()

    def unlock(self, keyring: Keyring | None) -> None:
        """Decrypt every stored record once: the chosen ones to connect with, all of them
        to redact (a server may print another server's stored password)."""
        self.records = {n: decrypt(rec, keyring) for n, rec in self.records.items()}
        self._redact_all()

    def also_redact(self, secrets: Iterable[Secret]) -> None:
        """Secrets a command brought besides the stored credentials (a GitHub token, an app's
        secret environment values): kept out of output, records and the model alike."""
        self._brought += list(secrets)
        self._redact_all()

    def _redact_all(self) -> None:
        self.redactor = Redactor([*known_secrets(self.ctx.settings, self.records.values()), *self._brought])
        self.audit.redact = self.redactor.redact

    # -- connections -------------------------------------------------------------------
    def host(self, name: str) -> Host:
        """The pooled connection to `name` (opened on first command, or `.connect()`)."""
        if name not in self.records:
            raise unknown_server(name)
        return self.pool.get(name)

    __call__ = host  # a fleet is an `open_host(name) -> Host` callable (plans/runner.py)

    def _connect(self, name: str, early: Future[socket.socket] | None) -> Host:
        if name == LOCAL:
            from vpsagent.remote.local import LocalHost

            return LocalHost()
        from vpsagent.remote.ssh import SSHHost

        params = self.params(name)
        if early is not None and params.gateway is None:
            params.early_socket = early
        return SSHHost(params)

    def params(self, name: str, _depth: int = 0) -> SSHParams:
        """SSH connection parameters for a stored record (secrets stay `Secret` until paramiko)."""
        import getpass

        from vpsagent.remote.keys import load_pkey
        from vpsagent.remote.ssh import SSHParams

        rec = self.records[name]
        if _depth > MAX_JUMPS:
            raise errors.InvalidInput(f"{rec.name}: the jump-host chain is longer than {MAX_JUMPS} (a loop?)")
        gateway = None
        if rec.jump:
            if rec.jump == LOCAL or rec.jump not in self.records:
                raise errors.InvalidInput(f"{rec.name}: jump host {rec.jump!r} is not a server in the inventory")
            gateway = self.params(rec.jump, _depth + 1)
        pkey = None
        if rec.private_key is not None:
            pkey = load_pkey(rec.private_key.reveal_bytes(),
                             rec.key_passphrase.reveal_str() if rec.key_passphrase else None)
        return SSHParams(
            host=rec.host, port=rec.port, user=rec.user or getpass.getuser(), pkey=pkey, password=rec.password,
            # "agent": only the agent; "default": what ssh would try (agent, then ~/.ssh keys)
            allow_agent=rec.auth in ("agent", "default"), look_for_keys=rec.auth == "default",
            sudo_password=rec.sudo_password,
            host_key=f"{rec.host_key_type} {rec.host_key}" if rec.host_key and rec.host_key_type else None,
            trust_on_first_use=self._tofu, replace_host_key=self._replace, on_host_key=self._pin,
            gateway=gateway, gateway_name=rec.jump, connect_timeout=self.connect_timeout, name=rec.name,
        )

    def _pin(self, ev: HostKeyEvent) -> None:
        """A host key learnt on first contact (or replaced on request): stored, then said."""
        from vpsagent.db.inventory import pin_host_key

        key_type, key_b64 = ev.key.split()[:2]
        with self._sandbox_lock:
            if (ev.server, ev.fingerprint) in self._told:
                return
            self._told.add((ev.server, ev.fingerprint))
        pin_host_key(self.ctx.engine, ev.server, key_type, key_b64, ev.fingerprint)
        if self._on_host_key is not None:
            self._on_host_key(ev)
        if ev.kind == "pinned":
            self.ctx.notify(f"{ev.server}: first contact, pinned host key {key_type} {ev.fingerprint}")
        else:
            self.ctx.notify(f"{ev.server}: host key replaced: {ev.old_fingerprint} -> {ev.fingerprint}")

    def warm(self, names: Sequence[str]) -> None:
        """Open TCP connections to these servers now (see HostPool.warm)."""
        self.pool.warm([(n, self.records[n].host, self.records[n].port) for n in names
                        if n != LOCAL and n in self.records and not self.records[n].jump])

    # -- the audited run ----------------------------------------------------------------
    def run(self, name: str, command: str, *, source: str, sudo: bool = False,
            conversation_id: int | None = None, test_run_id: int | None = None,
            decision: str | None = None, decision_reason: str | None = None, timeout: float | None = None,
            on_stdout: OutputCallback | None = None, on_stderr: OutputCallback | None = None,
            capture: int = DEFAULT_CAPTURE, sandbox: Sandbox = Sandbox.NONE) -> CommandResult:
        """The audited run (`run_audited`) on this fleet's connection to `name`. For a root
        login `sudo` is not applied (and not recorded): the command runs as it is."""
        if sudo and self._logs_in_as_root(name):
            sudo = False
            with self._sandbox_lock:
                first = ("sudo", name) not in self._told
                self._told.add(("sudo", name))
            if first:
                self.ctx.notify(f"{name}: logged in as root, so --sudo is not needed and not applied")
        return run_audited(self.audit, self.host(name), command, source=source, sudo=sudo,
                           conversation_id=conversation_id, test_run_id=test_run_id, decision=decision,
                           decision_reason=decision_reason, timeout=timeout, on_stdout=on_stdout,
                           on_stderr=on_stderr, capture=capture, sandbox=sandbox)

    def _logs_in_as_root(self, name: str) -> bool:
        rec = self.records[name]
        if rec.is_local:
            import os

            return os.geteuid() == 0
        return rec.user == "root"

    def sandbox(self, name: str, *, conversation_id: int | None = None) -> Sandbox:
        """Which read-only sandbox `name` offers, found out once per connection. The probe is
        recorded like any command, under its own source (`sandbox`), apart from what was asked."""
        from vpsagent.remote.sandbox import DETECT, parse_detect

        with self._sandbox_lock:
            if name not in self._sandboxes:
                result = self.run(name, DETECT, source="sandbox", timeout=30, conversation_id=conversation_id,
                                  decision_reason="vpsagent: which read-only sandbox this server offers")
                self._sandboxes[name] = parse_detect(result.stdout_text()) if result.ok else Sandbox.NONE
            return self._sandboxes[name]

    def operation(self, name: str, label: str, op: Callable[[], T], *, source: str,
                  size: Callable[[T], int] = lambda _v: 0, conversation_id: int | None = None,
                  decision: str | None = None, decision_reason: str | None = None) -> T:
        """Something that is not a shell command (an SFTP read or write) recorded like one."""
        row_id = self.audit.start(server=name, command=label, source=source, conversation_id=conversation_id,
                                  decision=decision, decision_reason=decision_reason)
        started = time.monotonic()
        try:
            value = op()
        except (OSError, errors.VpsAgentError) as exc:
            msg = getattr(exc, "message", None) or str(exc)
            status = CommandStatus.CONNECTION_LOST if isinstance(exc, errors.Unreachable) else CommandStatus.FAILED
            self.audit.fail(row_id, status, msg, duration_s=time.monotonic() - started)
            raise
        self.audit.finish(row_id, CommandResult(host=name, command=label, exit_code=0,
                                                duration_s=time.monotonic() - started, stdout_bytes=size(value)))
        return value

    def executor(self, source: str, *, test_run_id: int | None = None) -> Callable[[Host, str, float, bool],
                                                                                     CommandResult]:
        """An `execute(host, command, timeout, sudo)` for plans/runner.py: every command audited."""
        def execute(host: Host, command: str, timeout: float, sudo: bool) -> CommandResult:
            return self.run(host.name, command, source=source, test_run_id=test_run_id, timeout=timeout, sudo=sudo)

        return execute

    # -- the per-server lock (`--lock`) -----------------------------------------------------
    @contextlib.contextmanager
    def lock(self, what: str, *, wait_s: float | None = None, enabled: bool = True) -> Iterator[None]:
        """Hold the lock on every chosen server for the block (db/locks.py): all or none.

        Busy after `wait_s` (None: do not wait) is errors.Busy, exit 75, naming the holder.
        """
        if not enabled:
            yield
            return
        import getpass
        import os
        import socket

        from vpsagent.db.locks import Lease

        try:
            os_user = getpass.getuser()
        except Exception:  # noqa: BLE001 - no passwd entry in some containers
            os_user = "?"
        who = self.ctx.identity().email or os_user
        lease = Lease(self.ctx.engine, self.names,
                      f"vpsagent {what} by {who} on {socket.gethostname()} pid {os.getpid()}")
        lease.acquire(wait_s)
        try:
            yield
        finally:
            lease.release()

    # -- life cycle ------------------------------------------------------------------------
    def interrupt(self) -> None:
        self.pool.interrupt()

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_audited(audit: AuditLog, host: Host, command: str, *, source: str, sudo: bool = False,
                conversation_id: int | None = None, test_run_id: int | None = None,
                decision: str | None = None, decision_reason: str | None = None, timeout: float | None = None,
                on_stdout: OutputCallback | None = None, on_stderr: OutputCallback | None = None,
                capture: int = DEFAULT_CAPTURE, sandbox: Sandbox = Sandbox.NONE) -> CommandResult:
    """Record, run, complete: the one audited run. If the first write fails the command is not run.

    The row is completed on every path: a result, a connection error (re-raised),
    Ctrl-C (`interrupted`, re-raised) or a bug (`error`, re-raised). With a `sandbox`, the
    command runs inside the server's read-only view; the row records the command as given
    and says it was sandboxed.
    """
    if sandbox != Sandbox.NONE:
        decision_reason = f"{decision_reason or ''}; in the read-only sandbox ({sandbox})".lstrip("; ")
    row_id = audit.start(server=host.name, command=command, source=source, sudo=sudo,
                         conversation_id=conversation_id, test_run_id=test_run_id, decision=decision,
                         decision_reason=decision_reason)
    t0 = time.monotonic()
    try:
        result = host.run(wrap_in_sandbox(command, sandbox), sudo=sudo, timeout=timeout, on_stdout=on_stdout,
                          on_stderr=on_stderr, capture=capture)
    except BaseException as exc:
        status, why = _failure(exc)
        try:
            audit.fail(row_id, status, why, duration_s=time.monotonic() - t0)
        except Exception:  # noqa: BLE001 - already on an error path: the original exception is the one to report
            pass
        raise
    audit.finish(row_id, result)
    return result


def _failure(exc: BaseException) -> tuple[CommandStatus, str]:
    """How an exception out of `host.run` is recorded."""
    if isinstance(exc, KeyboardInterrupt):
        return CommandStatus.INTERRUPTED, "interrupted (Ctrl-C)"
    if isinstance(exc, BrokenPipeError):
        return CommandStatus.INTERRUPTED, "stopped: the reader of its output went away"
    if isinstance(exc, errors.ConnectionLost):
        return CommandStatus.CONNECTION_LOST, exc.line()
    if isinstance(exc, errors.VpsAgentError):
        return CommandStatus.ERROR, exc.line()
    return CommandStatus.ERROR, f"{type(exc).__name__}: {exc}"


def open_fleet(ctx: Context, selection: Selection | Sequence[str], *, how: str = "-s NAME, -t TAG or --all",
               inventory: Mapping[str, ServerRecord] | None = None, warm: bool = False,
               connect_timeout: float | None = None, on_host_key: HostKeyCallback | None = None,
               trust_on_first_use: bool = True, replace_host_key: bool = False) -> Fleet:
    """Resolve `selection` against the inventory and open the fleet for it.

    A list of names is taken as chosen already (each must exist). `connect_timeout`
    (default: the `connect_timeout` setting) bounds each server's connection phase: TCP,
    the SSH banner, authentication, and the channel through a jump host. With `warm`, TCP
    connections to the chosen servers are opened at once and the key is derived while the
    SSH libraries are imported: on a many-server run these overlap instead of adding up.
    """
    from concurrent.futures import ThreadPoolExecutor

    inv = dict(inventory) if inventory is not None else load_inventory(ctx.engine)
    sel = selection if isinstance(selection, Selection) else Selection(tuple(selection))
    names = select(inv, sel, how=how)
    fleet = Fleet(ctx, names, inv, connect_timeout=connect_timeout or ctx.settings.connect_timeout,
                  on_host_key=on_host_key, trust_on_first_use=trust_on_first_use,
                  replace_host_key=replace_host_key)
    try:
        if warm:
            fleet.warm(names)
        with ThreadPoolExecutor(max_workers=1) as ex:
            # scrypt releases the GIL: the key is derived while fabric is imported
            keyring = ex.submit(ctx.keyring) if any(r.has_secrets for r in inv.values()) else None
            if any(n != LOCAL for n in with_jump_hosts(inv, names)):
                import fabric  # noqa: F401
            fleet.unlock(keyring.result() if keyring is not None else None)
    except BaseException:
        fleet.close()
        raise
    return fleet


def open_host(ctx: Context, name: str, *, connect_timeout: float | None = None,
              trust_on_first_use: bool = True, replace_host_key: bool = False) -> Host:
    """One server's connection on its own (tests, one-off tools); close the Host when done."""
    return open_fleet(ctx, [name], connect_timeout=connect_timeout, trust_on_first_use=trust_on_first_use,
                      replace_host_key=replace_host_key).host(name)
