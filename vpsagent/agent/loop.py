"""The tool-use loop: stream a response, run the tools it asks for, repeat.

Ends cleanly on every stop reason. Budgets (turns, cost) stop it with
`errors.BudgetExceeded`; an API failure after the SDK's retries stops it with
`errors.AIServiceError`. Either way the history handed to `on_message` so far is a
valid conversation (every tool_use has its tool_result), so `--continue` can resume.
Both exceptions carry the partial `AgentResult` as `.result`.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vpsagent import errors
from vpsagent.agent.client import DEFAULT_MAX_TOKENS, StreamBroke, Turn, Usage, stream_turn
from vpsagent.agent.tools import ToolEnv, ToolEvent, ToolOutcome, execute
from vpsagent.jsondata import JSONObject

if TYPE_CHECKING:
    import anthropic

# stop reasons after which the model has nothing more to say this run
_FINAL = {"end_turn", "stop_sequence", "max_tokens", "refusal", "model_context_window_exceeded"}


@dataclass
class AgentEvent:
    """What the UI is told: text deltas, tool activity, notices."""

    kind: str  # text | tool | notice
    text: str = ""
    tool: ToolEvent | None = None


@dataclass
class AgentResult:
    answer: str = ""  # the last model turn's text
    texts: list[str] = field(default_factory=list)  # every model turn's text, in order
    stop_reason: str | None = None
    turns: int = 0
    usage: Usage = field(default_factory=Usage)
    outcomes: list[ToolOutcome] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    @property
    def denied(self) -> list[ToolOutcome]:
        return [o for o in self.outcomes if o.denied]


MessageFn = Callable[[str, list[JSONObject]], None]


def repair_history(messages: list[JSONObject]) -> list[JSONObject]:
    """Make a stored history valid to send again.

    An interrupted run can leave an assistant tool_use without its tool_result, and a
    failed run leaves the history ending on a user message; the API accepts neither a
    dangling tool_use nor (reliably) two user turns in a row.
    """
    fixed: list[JSONObject] = []
    for msg in messages:
        content = msg["content"]
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        msg = {"role": msg["role"], "content": list(content)}
        if fixed and fixed[-1]["role"] == msg["role"]:
            fixed[-1]["content"].extend(msg["content"])
        else:
            fixed.append(msg)
    for i, msg in enumerate(fixed):
        if msg["role"] != "assistant":
            continue
        ids = [b["id"] for b in msg["content"] if b.get("type") == "tool_use"]
        if not ids:
            continue
        nxt = fixed[i + 1] if i + 1 < len(fixed) else None
        have = {b.get("tool_use_id") for b in (nxt["content"] if nxt else []) if b.get("type") == "tool_result"}
        missing = [
            {"type": "tool_result", "tool_use_id": tid, "content": "not executed: the run was interrupted", "is_error": True}
            for tid in ids
            if tid not in have
        ]
        if missing:
            if nxt is None or nxt["role"] != "user":
                fixed.insert(i + 1, {"role": "user", "content": missing})
            else:
                # tool_results must come first in the user turn that follows the tool_use
                nxt["content"][:0] = missing
    return fixed


def add_user_turn(messages: list[JSONObject], content: list[JSONObject]) -> list[JSONObject]:
    """Append a user turn, merging into a trailing user turn (after a failed run)."""
    if messages and messages[-1]["role"] == "user":
        messages[-1] = {"role": "user", "content": list(messages[-1]["content"]) + content}
    else:
        messages.append({"role": "user", "content": content})
    return messages


def _with_cache_breakpoint(messages: list[JSONObject]) -> list[JSONObject]:
    """A copy whose last block carries cache_control, so each turn reuses the one before."""
    if not messages:
        return messages
    out = list(messages)
    last = copy.deepcopy(out[-1])
    if last["content"]:
        last["content"][-1]["cache_control"] = {"type": "ephemeral"}
    out[-1] = last
    return out


class Agent:
    def __init__(
        self,
        client: anthropic.Anthropic,
        env: ToolEnv,
        *,
        model: str,
        system: list[JSONObject],
        tools: list[JSONObject],
        max_turns: int = 20,
        max_cost: float | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        stream_retries: int = 2,
        on_event: Callable[[AgentEvent], None] | None = None,
        on_message: MessageFn | None = None,
        on_usage: Callable[[Usage], None] | None = None,
    ):
        self.client = client
        self.env = env
        self.model = model
        self.system = system
        self.tools = tools
        self.max_turns = max_turns
        self.max_cost = max_cost
        self.max_tokens = max_tokens
        self.stream_retries = stream_retries
        self._on_event = on_event
        self._on_message = on_message
        self._on_usage = on_usage
        env.on_event = lambda ev: self._emit(AgentEvent("tool", tool=ev))

    def _emit(self, ev: AgentEvent) -> None:
        if self._on_event is not None:
            self._on_event(ev)

    def _notice(self, result: AgentResult, text: str) -> None:
        result.notices.append(text)
        self._emit(AgentEvent("notice", text=text))

    def _append(self, messages: list[JSONObject], role: str, content: list[JSONObject]) -> None:
        messages.append({"role": role, "content": content})
        if self._on_message is not None:
            self._on_message(role, content)

    def run(self, messages: list[JSONObject]) -> AgentResult:
        """Continue `messages` (which ends with the user's turn) until the model is done."""
        result = AgentResult()
        try:
            self._run(messages, result)
        except (errors.BudgetExceeded, errors.AIServiceError, errors.Interrupted) as exc:
            # errors.py declares no `.result`: the partial result rides on the exception
            setattr(exc, "result", result)  # noqa: B010 - services/ask.py reads it back
            exc.data.setdefault("turns", result.turns)
            raise
        return result

    def _run(self, messages: list[JSONObject], result: AgentResult) -> None:
        while True:
            if result.turns >= self.max_turns:
                raise errors.BudgetExceeded(
                    f"stopped after {result.turns} turns (--max-turns {self.max_turns})",
                    hint="the transcript is saved; raise --max-turns and resume with --continue",
                )
            params = {
                "model": self.model,
                "max_tokens": self.max_tokens,
                "system": self.system,
                "tools": self.tools,
                "messages": _with_cache_breakpoint(messages),
            }
            result.turns += 1
            turn = self._stream(params, result)
            result.usage.add(turn.usage)
            if self._on_usage is not None:
                self._on_usage(turn.usage)
            stop = turn.stop_reason
            result.stop_reason = stop
            # the API refuses empty text blocks when they are sent back next turn
            content = [b for b in turn.content if not (b.get("type") == "text" and not b.get("text"))]
            tool_uses = [b for b in content if b.get("type") == "tool_use"]
            if stop != "tool_use" and tool_uses and stop != "pause_turn":
                # e.g. max_tokens in the middle of a tool call: its input may be cut, so it
                # neither runs nor stays in the history as an unanswered call.
                content = [b for b in content if b.get("type") != "tool_use"]
                tool_uses = []
            if not content:
                content = [{"type": "text", "text": f"[no answer: stop reason {stop}]"}]
            self._append(messages, "assistant", content)
            text = "".join(b.get("text", "") for b in content if b.get("type") == "text")
            if text:
                result.answer = text
                result.texts.append(text)
            if stop == "tool_use" and tool_uses:
                self._run_tools(messages, result, tool_uses)
                continue
            if stop == "pause_turn":
                continue  # the API paused a long turn; sending it back lets it go on
            if stop == "max_tokens":
                self._notice(result, f"the answer was cut at the output limit ({self.max_tokens} tokens)")
            elif stop == "refusal":
                self._notice(result, "the model declined to continue (refusal)")
            elif stop == "model_context_window_exceeded":
                self._notice(result, "the conversation no longer fits the model's context window; start a new one")
            elif stop not in _FINAL:
                self._notice(result, f"the model stopped ({stop})")
            return

    def _stream(self, params: JSONObject, result: AgentResult) -> Turn:
        """One response, asked for again when a started stream breaks off.

        Nothing of a broken response is kept or executed (its tool input may be cut), so
        asking again is safe; the SDK retries failed requests but not broken streams.
        """
        for attempt in range(self.stream_retries + 1):
            try:
                return stream_turn(self.client, params, on_text=lambda t: self._emit(AgentEvent("text", text=t)))
            except StreamBroke as exc:
                if attempt == self.stream_retries:
                    raise
                self._notice(result, f"{exc.message}; asking again")
                time.sleep(min(4.0, 0.25 * 2**attempt))
            except KeyboardInterrupt:
                raise errors.Interrupted("interrupted while the model was answering") from None
        raise AssertionError("unreachable")

    def _run_tools(self, messages: list[JSONObject], result: AgentResult, tool_uses: list[JSONObject]) -> None:
        over_budget = self.max_cost is not None and result.usage.cost_usd > self.max_cost
        blocks: list[JSONObject] = []
        interrupted = False
        for b in tool_uses:
            if over_budget or interrupted:
                why = "the cost budget is spent" if over_budget else "the user interrupted the run"
                blocks.append({"type": "tool_result", "tool_use_id": b["id"], "content": f"not executed: {why}", "is_error": True})
                continue
            try:
                outcome = execute(self.env, b["id"], b["name"], b.get("input"))
            except KeyboardInterrupt:
                interrupted = True
                blocks.append({"type": "tool_result", "tool_use_id": b["id"], "is_error": True,
                               "content": "interrupted by the user while it ran; it may have partly run"})
                continue
            result.outcomes.append(outcome)
            blocks.append(outcome.tool_result_block())
            interrupted = interrupted or outcome.interrupted
        self._append(messages, "user", blocks)
        if interrupted:
            raise errors.Interrupted("interrupted while running tools")
        if over_budget:
            raise errors.BudgetExceeded(
                f"cost budget reached: ${result.usage.cost_usd:.4f} spent, --max-cost {self.max_cost}",
                hint="the transcript is saved; raise --max-cost and resume with --continue",
            )
