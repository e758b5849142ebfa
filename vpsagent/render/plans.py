"""How test plans look while they run: a line per finished step on stderr."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vpsagent.redact import inert
from vpsagent.render import Output

if TYPE_CHECKING:
    from vpsagent.plans.runner import Event


# How a step's (or a deploy stage's) outcome looks in a progress line.
MARKS = {"passed": ("✓", "green"), "failed": ("✗", "red"), "error": ("!", "red"), "skipped": ("-", "yellow"),
         "planned": ("·", "cyan")}


class Progress:
    """Live progress on stderr: one line per finished step (colours on a TTY)."""

    def __init__(self, out: Output):
        self.console = out.err

    def __call__(self, event: Event) -> None:
        if event.kind == "server_start":
            self.console.print(f"{event.plan.name} @ {event.server}", markup=False,
                               highlight=False, style="bold", soft_wrap=True)
        if event.kind != "step_done":
            return
        r = event.result
        assert r is not None, "step_done carries the step's result"
        mark, style = MARKS[r.status]
        text = f"  {mark} [{event.server}] {inert(r.name)}"
        if r.status in ("failed", "error"):
            text += f" — {inert(r.message)}"
        elif r.status == "skipped":
            text += f" ({inert(r.message)})"
        else:
            text += f" ({r.duration_s:.2f}s)"
        self.console.print(text, markup=False, highlight=False, style=style, soft_wrap=True)
