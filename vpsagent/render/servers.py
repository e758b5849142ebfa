"""How the inventory commands look."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from vpsagent.outcomes import CheckStatus
from vpsagent.render import LazyConsole, Output, table
from vpsagent.services.probe import CheckResult, exit_code

_HOW = {CheckStatus.OK: "host key verified", CheckStatus.PINNED: "host key pinned on first contact"}


def _how(r: CheckResult) -> str:
    if r.address == "this machine":
        return "built-in, no SSH"
    return _HOW.get(r.status) or f"host key replaced (was {r.old_fingerprint})"


def check_summary(results: Sequence[CheckResult]) -> str:
    """`3 servers: 2 ok, 1 unreachable`, as after a many-server `run`."""
    counts = Counter("ok" if r.ok else str(r.status) for r in results)
    parts = [f"{n} {status}" for status, n in sorted(counts.items(), key=lambda kv: (kv[0] != "ok", kv[0]))]
    noun = "server" if len(results) == 1 else "servers"
    return f"{len(results)} {noun}: " + ", ".join(parts)


def render_check(out: Output, results: Sequence[CheckResult]) -> int:
    """`servers check`: an aligned row per reachable server, an `error:` line per other one
    (stderr), and a summary line after several — or the envelope."""
    code = exit_code(results)

    def text(console: LazyConsole) -> None:
        good = [r for r in results if r.ok]
        if good:
            console.print(table(
                ["SERVER", "ADDRESS", "HOST KEY", "CONNECT", "SANDBOX", "RESULT"],
                [[r.server, r.address, f"{r.host_key_type} {r.fingerprint}" if r.fingerprint else "-",
                  f"{r.connect_ms:.0f} ms" if r.connect_ms is not None else "-", r.sandbox or "-", _how(r)]
                 for r in good], flex=("ADDRESS", "SERVER")))
        for r in results:
            if not r.ok:
                out.err.print(f"error: {r.error}", markup=False)
        if len(results) > 1:
            out.err.print(check_summary(results), markup=False)

    errs = [{"code": r.error_code or r.status, "message": r.error or r.status} for r in results if not r.ok]
    return out.emit({"servers": results}, text, exit_code=code, errors=errs)
