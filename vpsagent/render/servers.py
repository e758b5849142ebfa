"""How the inventory commands look."""

from __future__ import annotations

from collections.abc import Sequence

from vpsagent.outcomes import CheckStatus
from vpsagent.render import LazyConsole, Output
from vpsagent.services.probe import CheckResult, exit_code

_HOW = {CheckStatus.OK: "host key verified", CheckStatus.PINNED: "host key pinned on first contact"}


def render_check(out: Output, results: Sequence[CheckResult]) -> int:
    """`servers check`: a line per server (errors on stderr), or the envelope."""
    code = exit_code(results)

    def text(console: LazyConsole) -> None:
        for r in results:
            if not r.ok:
                out.err.print(f"error: {r.error}", markup=False)
                continue
            how = _HOW.get(r.status) or f"host key replaced (was {r.old_fingerprint})"
            if r.address == "this machine":
                how = "built-in, no SSH"
            key = f"{r.host_key_type} {r.fingerprint}" if r.fingerprint else ""
            ms = f"{r.connect_ms:.0f} ms" if r.connect_ms is not None else ""
            box = f"sandbox {r.sandbox}" if r.sandbox else ""
            console.print(f"{r.server}: ok  {r.address}  {key}  {ms}  {box}  ({how})".replace("    ", "  "),
                          markup=False)

    errs = [{"code": r.error_code or r.status, "message": r.error or r.status} for r in results if not r.ok]
    return out.emit({"servers": results}, text, exit_code=code, errors=errs)
