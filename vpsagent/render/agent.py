"""How the agent looks while it works: the answer streaming to stdout, each tool call, its
decision and a few lines of its output on stderr — and the summaries after."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from vpsagent.errors import ExitCode
from vpsagent.render import Output
from vpsagent.render.stream import inert as _safe
from vpsagent.wording import plural

if TYPE_CHECKING:
    from vpsagent.agent.loop import AgentEvent
    from vpsagent.jsondata import JSONObject
    from vpsagent.services.ask import AskResult

# How much of each command's output is echoed on stderr while it runs: enough to see
# what happens, not a 5 MB log scrolling past (the model gets its own bounded copy).
ECHO_LINES = 8
ECHO_BYTES = 2048


class Display:
    """Writes the answer to stdout as it streams and tool activity, compact, to stderr."""

    def __init__(self, out: Output, *, answer_to_stdout: bool):
        self.out = out
        self.answer_to_stdout = answer_to_stdout
        self.mid_line = False
        self.break_due = False  # the next answer text starts a new line (a turn after tools)
        self.echoed: dict[str, int] = {}
        self.lines: dict[str, int] = {}

    def _break_line(self) -> None:
        # keep stderr lines from starting mid-answer on a terminal (now); in a pipe the
        # line ends when the model's next text comes, so turns never run together
        if not self.mid_line:
            return
        if sys.stdout.isatty():
            sys.stdout.write("\n")
            sys.stdout.flush()
        else:
            self.break_due = True
        self.mid_line = False

    def __call__(self, ev: AgentEvent) -> None:
        if ev.kind == "text":
            if self.answer_to_stdout:
                if self.break_due and ev.text:
                    sys.stdout.write("\n")
                    self.break_due = False
                sys.stdout.write(ev.text)
                sys.stdout.flush()
                self.mid_line = not ev.text.endswith("\n")
            return
        self._break_line()
        err = self.out.err
        if ev.kind == "notice":
            self.out.warn(ev.text)
            return
        tev = ev.tool
        assert tev is not None, "a tool event carries its ToolEvent"
        call = tev.call
        if tev.kind == "notice":
            self.out.warn(_safe(tev.data.decode("utf-8", "replace")))
            return
        if tev.kind == "call":
            if call.name == "list_servers":
                err.print("→ list_servers", markup=False, style="dim")
                return
            mark = {"allow": "→", "deny": "✗", "dry_run": "·"}.get(call.decision or "", "✗")
            tail = "" if call.decision == "allow" else f"  [{call.decision}{': ' + call.policy_reason if call.policy_reason else ''}]"
            err.print(_safe(f"{mark} {call.server or '?'} $ {call.command or call.name}{tail}"), markup=False,
                      style="cyan" if call.decision == "allow" else "yellow")
        elif tev.kind == "output":
            shown = self.echoed.get(call.id, 0)
            lines = self.lines.get(call.id, 0)
            if shown >= ECHO_BYTES or lines >= ECHO_LINES:
                return
            text = tev.data[: ECHO_BYTES - shown].decode("utf-8", "replace")
            keep = text.splitlines()[: ECHO_LINES - lines]
            self.echoed[call.id] = shown + len(tev.data)
            self.lines[call.id] = lines + len(keep)
            for line in keep:
                err.print(f"  {_safe(line)}", markup=False, style="dim")
        elif tev.kind == "result" and tev.outcome is not None:
            o = tev.outcome
            if o.executed and call.name == "run_command":
                more = " (output cut on screen)" if self.echoed.get(call.id, 0) >= ECHO_BYTES or self.lines.get(call.id, 0) >= ECHO_LINES else ""
                err.print(f"  ← exit {o.exit_code} in {o.duration_s:.2f}s{more}", markup=False, style="dim")
            elif o.is_error and not o.denied:
                # invalid calls, unreachable servers, unreadable files: the person running it
                # must see why, not only the model (denials are already on the call line)
                first = o.content.strip().splitlines()[0] if o.content.strip() else "error"
                err.print(f"  ✗ {_safe(first)}", markup=False, style="yellow")

    def finish(self) -> None:
        if self.mid_line and self.answer_to_stdout:
            sys.stdout.write("\n")
            sys.stdout.flush()
            self.mid_line = False


def usage_line(result: AskResult) -> str:
    u = result.usage
    return (f"conversation #{result.conversation_id} · {plural(result.turns, 'turn')} · tokens {u['input_tokens']} in, "
            f"{u['output_tokens']} out, {u['cache_read_tokens']} cache read, {u['cache_write_tokens']} cache write · "
            f"est. ${result.cost_usd:.4f}")


def exit_code(result: AskResult) -> int:
    """5 when a server stayed unreachable (the answer lacks it), before 4 for a denial: a
    server that is down is the first thing to fix, and approving would not have helped."""
    if result.unreachable:
        return int(ExitCode.UNREACHABLE)
    if result.denied:
        return int(ExitCode.NEEDS_APPROVAL)
    if result.stop_reason == "refusal":
        return int(ExitCode.FAILURE)
    return int(ExitCode.OK)


_WAYS = {
    "change": "changes: approve them on a terminal or rerun with --yes",
    "read_only": "read-only commands a policy ask rule names: approve them on a terminal or rerun with --yes",
    "unknown": "unknown commands: approve them on a terminal or allow the exact command in the policy (--yes does not)",
    "destructive": "destructive commands: only a policy allow rule naming them (--yes never does)",
    "read_only_mode": "--read-only allows inspection only",
    "deny_rule": "commands a policy deny rule names never run",
}


def denial_summary(denied: list[JSONObject]) -> str:
    """One line after the answer: how many were denied and what would let each kind run.

    Switches on each denial's cause (outcomes.DenyCause) and risk, never on the prose."""
    kinds: list[str] = []
    for d in denied:
        cause, risk = d.get("cause"), d.get("risk")
        if cause == "no_approver" and risk != "destructive":  # a destructive one asked only by an ask rule
            kinds.append({"unknown": "unknown", "read-only": "read_only"}.get(str(risk), "change"))
        elif cause in _WAYS:
            kinds.append(str(cause))
    ways = [_WAYS[k] for k in _WAYS if k in kinds]
    n = len(denied)
    head = f"{n} command{'s were' if n > 1 else ' was'} denied (reasons above)"
    return head + (": " + "; ".join(ways) if ways else "")
