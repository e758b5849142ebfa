"""`vpsagent servers check`: connect and authenticate; pin the host key on first contact,
verify it afterwards, replace it only when asked. Runs no command (nothing to audit).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vpsagent import errors
from vpsagent.errors import ExitCode
from vpsagent.outcomes import CheckStatus, exit_code_for
from vpsagent.services.context import Context
from vpsagent.services.fleet import Fleet, Selection

if TYPE_CHECKING:
    from vpsagent.remote.ssh import HostKeyEvent


@dataclass
class CheckResult:
    server: str
    status: CheckStatus
    address: str = ""
    user: str | None = None
    auth: str = ""
    host_key_type: str | None = None
    fingerprint: str | None = None
    old_fingerprint: str | None = None
    connect_ms: float | None = None
    sandbox: str | None = None  # the read-only sandbox it offers: bwrap | unshare | none
    error: str | None = None
    error_code: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in (CheckStatus.OK, CheckStatus.PINNED, CheckStatus.REPLACED)


_STATUS_OF = {
    "ssh_auth_failed": CheckStatus.AUTH_FAILED,
    "host_key_mismatch": CheckStatus.HOST_KEY_MISMATCH,
    "host_key_unknown": CheckStatus.HOST_KEY_MISMATCH,
}


class _Events:
    """Host keys learnt while checking, by server (fan-out threads append at once)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_server: dict[str, HostKeyEvent] = {}

    def __call__(self, ev: HostKeyEvent) -> None:
        with self._lock:
            self.by_server[ev.server] = ev


def _check_one(fleet: Fleet, name: str, events: _Events) -> CheckResult:
    rec = fleet.records[name]
    res = CheckResult(server=name, status=CheckStatus.OK, address=f"{rec.host}:{rec.port}" if rec.port else rec.host,
                      user=rec.user, auth=rec.auth, host_key_type=rec.host_key_type,
                      fingerprint=rec.host_key_fingerprint)
    if rec.is_local:
        res.address = "this machine"
        res.sandbox = fleet.sandbox(name)
        return res
    from vpsagent.remote.ssh import SSHHost

    t0 = time.monotonic()
    try:
        host = fleet.host(name)
        host.connect()
        res.connect_ms = round((time.monotonic() - t0) * 1000, 1)
        if isinstance(host, SSHHost):
            line = host.host_key_line()
            if line:
                res.host_key_type = line.split()[0]
            res.fingerprint = host.host_key_fingerprint()
        res.sandbox = fleet.sandbox(name)
        ev = events.by_server.get(name)
        if ev is not None:
            res.status = CheckStatus(ev.kind)  # pinned | replaced
            res.old_fingerprint = ev.old_fingerprint
    except errors.Unreachable as exc:
        res.status = _STATUS_OF.get(exc.code, CheckStatus.UNREACHABLE)
        res.error, res.error_code = exc.line(), exc.code
        if isinstance(exc, errors.HostKeyMismatch):
            offered, pinned = exc.data.get("offered_fingerprint"), exc.data.get("pinned_fingerprint")
            res.fingerprint = offered if isinstance(offered, str) else res.fingerprint
            res.old_fingerprint = pinned if isinstance(pinned, str) else None
    except errors.CredentialError:
        raise  # a wrong secret / tampered record: the whole command stops (exit 7)
    except errors.VpsAgentError as exc:
        res.status, res.error, res.error_code = CheckStatus.ERROR, exc.line(), exc.code
    return res


def check_servers(ctx: Context, selection: Selection, *, update_host_key: bool = False, forks: int = 32,
                  connect_timeout: float | None = None, pin: bool = True) -> list[CheckResult]:
    """Check every chosen server in parallel; results in the order chosen. Without `pin`
    an unpinned host key is reported (host_key_unknown), not trusted."""
    from vpsagent.remote.fanout import fan_out
    from vpsagent.services.fleet import open_fleet

    if update_host_key and (selection.tags or selection.all):
        # re-trusting keys is a per-server decision after checking with the admin of each
        raise errors.UsageError("--update-host-key takes server names, not -t or --all",
                                hint="name each server whose new key you have verified")
    events = _Events()
    with open_fleet(ctx, selection, how="NAME..., -t TAG or --all", connect_timeout=connect_timeout,
                    on_host_key=events, replace_host_key=update_host_key, trust_on_first_use=pin) as fleet:
        outs = fan_out(fleet.names, lambda n: _check_one(fleet, n, events),
                       forks=max(1, min(forks, len(fleet.names) or 1)))
    results = []
    for o in outs:
        if o.error is not None:
            if isinstance(o.error, errors.VpsAgentError) and o.error.exit_code == ExitCode.CREDENTIAL:
                raise o.error  # a wrong secret / tampered record is not a per-server problem
            msg = o.error.line() if isinstance(o.error, errors.VpsAgentError) else f"{type(o.error).__name__}: {o.error}"
            results.append(CheckResult(server=o.name, status=CheckStatus.ERROR, error=msg))
        else:
            assert o.value is not None
            results.append(o.value)
    return results


def exit_code(results: Sequence[CheckResult]) -> int:
    return exit_code_for(r.status for r in results)
