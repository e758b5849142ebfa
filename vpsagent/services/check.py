"""`vpsagent servers check`: connect and authenticate; pin the host key on first contact,
verify it afterwards, replace it only when asked. Runs no command (nothing to audit).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vpsagent import errors
from vpsagent.errors import ExitCode

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from vpsagent.settings import Settings


@dataclass
class CheckResult:
    server: str
    status: str  # ok | pinned | replaced | unreachable | auth_failed | host_key_mismatch | error
    address: str = ""
    user: str | None = None
    auth: str = ""
    host_key_type: str | None = None
    fingerprint: str | None = None
    old_fingerprint: str | None = None
    connect_ms: float | None = None
    error: str | None = None
    error_code: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "pinned", "replaced")


_STATUS_OF = {
    "ssh_auth_failed": "auth_failed",
    "host_key_mismatch": "host_key_mismatch",
    "host_key_unknown": "host_key_mismatch",
}


def check_one(settings: Settings, engine: Engine, name: str, *, update_host_key: bool = False,
              keyring_get: Callable[[], Any] | None = None, notify: Callable[[str], None] | None = None,
              connect_timeout: float | None = None) -> CheckResult:
    from vpsagent.remote.hosts import DEFAULT_CONNECT_TIMEOUT, open_host
    from vpsagent.services.servers import LOCAL, show_server

    view = show_server(engine, name)
    res = CheckResult(server=name, status="ok", address=f"{view.host}:{view.port}" if view.port else view.host,
                      user=view.user, auth=view.auth, host_key_type=view.host_key_type,
                      fingerprint=view.host_key_fingerprint)
    if name == LOCAL:
        res.address = "this machine"
        return res
    events: list[Any] = []
    t0 = time.monotonic()
    host = None
    try:
        host = open_host(settings, engine, name, keyring_get=keyring_get, notify=notify,
                         replace_host_key=update_host_key, on_host_key=events.append,
                         connect_timeout=connect_timeout or DEFAULT_CONNECT_TIMEOUT)
        host.connect()  # type: ignore[attr-defined]
        res.connect_ms = round((time.monotonic() - t0) * 1000, 1)
        line = host.host_key_line()  # type: ignore[attr-defined]
        if line:
            res.host_key_type = line.split()[0]
        res.fingerprint = host.host_key_fingerprint()  # type: ignore[attr-defined]
        for ev in events:
            if ev.server == name:
                res.status = ev.kind  # pinned | replaced
                res.old_fingerprint = ev.old_fingerprint
    except errors.Unreachable as exc:
        res.status = _STATUS_OF.get(exc.code, "unreachable")
        res.error, res.error_code = exc.line(), exc.code
        if isinstance(exc, errors.HostKeyMismatch):
            res.fingerprint = exc.data.get("offered_fingerprint", res.fingerprint)
            res.old_fingerprint = exc.data.get("pinned_fingerprint")
    except errors.CredentialError:
        raise  # a wrong secret / tampered record: the whole command stops (exit 7)
    except errors.VpsAgentError as exc:
        res.status, res.error, res.error_code = "error", exc.line(), exc.code
    finally:
        if host is not None:
            host.close()
    return res


def check_servers(settings: Settings, engine: Engine, names: Sequence[str], *, update_host_key: bool = False,
                  keyring_get: Callable[[], Any] | None = None, notify: Callable[[str], None] | None = None,
                  forks: int = 32, connect_timeout: float | None = None) -> list[CheckResult]:
    """Check every server in parallel; results in the order of `names`."""
    from vpsagent.remote.fanout import fan_out

    outs = fan_out(list(names), lambda n: check_one(settings, engine, n, update_host_key=update_host_key,
                                                    keyring_get=keyring_get, notify=notify,
                                                    connect_timeout=connect_timeout),
                   forks=max(1, min(forks, len(names) or 1)))
    results = []
    for o in outs:
        if o.error is not None:
            if isinstance(o.error, errors.VpsAgentError) and o.error.exit_code == ExitCode.CREDENTIAL:
                raise o.error  # a wrong secret / tampered record is not a per-server problem
            msg = o.error.line() if isinstance(o.error, errors.VpsAgentError) else f"{type(o.error).__name__}: {o.error}"
            results.append(CheckResult(server=o.name, status="error", error=msg))
        else:
            results.append(o.value)
    return results


def exit_code_for(results: Sequence[CheckResult]) -> int:
    if any(r.status in ("unreachable", "auth_failed", "host_key_mismatch") for r in results):
        return int(ExitCode.UNREACHABLE)
    if any(not r.ok for r in results):
        return int(ExitCode.FAILURE)
    return int(ExitCode.OK)
