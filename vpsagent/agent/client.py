"""The Anthropic client: construction, the default model, one streamed turn, cost.

`anthropic` is imported inside functions so `vpsagent --help` does not pay for it.
The SDK's own retries (429, 529, 5xx, connection errors) are kept; what is left after
them becomes `errors.AIServiceError` (exit 6) with one clear line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vpsagent import errors
from vpsagent.jsondata import JSONObject

if TYPE_CHECKING:
    import anthropic
    from anthropic.types import ContentBlock
    from anthropic.types import Usage as APIUsage

    from vpsagent.settings import Settings

FALLBACK_MODEL = "claude-sonnet-5-5"
DEFAULT_MAX_TOKENS = 8192

# USD per million tokens (input, output) by model family; cache writes cost 1.25x input,
# cache reads 0.1x. An estimate for the user's budget, not an invoice.
_PRICES: list[tuple[str, float, float]] = [
    ("claude-opus-4-0", 15.0, 75.0),
    ("claude-opus-4-1", 15.0, 75.0),
    ("claude-opus-4-2025", 15.0, 75.0),
    ("claude-opus", 5.0, 25.0),
    ("claude-sonnet", 3.0, 15.0),
    ("claude-haiku-3", 0.8, 4.0),
    ("claude-haiku", 1.0, 5.0),
]
_DEFAULT_PRICE = (3.0, 15.0)


def default_model() -> str:
    """The newest Sonnet the installed SDK knows and does not mark deprecated."""
    try:
        from typing import get_args

        from anthropic._data import DEPRECATED_MODELS
        from anthropic.types.model_param import ModelParam

        literal = get_args(ModelParam)[0]
        names = [m for m in get_args(literal) if isinstance(m, str)]
    except Exception:  # a different SDK layout: fall back to the known-good name
        return FALLBACK_MODEL
    for name in names:  # the SDK lists newest first
        if name.startswith("claude-sonnet-") and name not in DEPRECATED_MODELS and not name[-8:].isdigit():
            return name
    return FALLBACK_MODEL


def is_deprecated(model: str) -> str | None:
    """The retirement date when the SDK marks `model` deprecated, else None."""
    try:
        from anthropic._data import DEPRECATED_MODELS
    except Exception:
        return None
    return DEPRECATED_MODELS.get(model)


def make_client(settings: Settings, *, max_retries: int = 2) -> anthropic.Anthropic:
    """The client. The SDK's default timeout is 600 s for everything, which let a silent
    endpoint hold `ask` for half an hour across retries; here connecting is bounded by
    `ai_connect_timeout` and every read (headers, then the gap between stream events) by
    `ai_read_timeout`. The SDK still retries connection failures and timeouts."""
    import anthropic

    if settings.anthropic_api_key is None:
        raise errors.ConfigError(
            "ANTHROPIC_API_KEY is not set",
            hint="export ANTHROPIC_API_KEY=sk-ant-... (from console.anthropic.com)",
        )
    return anthropic.Anthropic(
        api_key=settings.anthropic_api_key.reveal_str(),
        base_url=settings.anthropic_base_url or None,
        max_retries=max_retries,
        timeout=anthropic.Timeout(settings.ai_read_timeout, connect=settings.ai_connect_timeout),
    )


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0

    def add(self, other: Usage) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_read_tokens += other.cache_read_tokens
        self.cache_write_tokens += other.cache_write_tokens
        self.cost_usd += other.cost_usd

    def as_dict(self) -> dict[str, int | float]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "cost_usd": round(self.cost_usd, 6),
        }


def price(model: str) -> tuple[float, float]:
    for prefix, inp, out in _PRICES:
        if model.startswith(prefix):
            return inp, out
    return _DEFAULT_PRICE


def usage_from(model: str, u: APIUsage | None) -> Usage:
    inp, out = price(model)
    usage = Usage(
        input_tokens=int(getattr(u, "input_tokens", 0) or 0),
        output_tokens=int(getattr(u, "output_tokens", 0) or 0),
        cache_read_tokens=int(getattr(u, "cache_read_input_tokens", 0) or 0),
        cache_write_tokens=int(getattr(u, "cache_creation_input_tokens", 0) or 0),
    )
    usage.cost_usd = (
        usage.input_tokens * inp
        + usage.output_tokens * out
        + usage.cache_write_tokens * inp * 1.25
        + usage.cache_read_tokens * inp * 0.1
    ) / 1_000_000
    return usage


@dataclass
class Turn:
    """One model response, complete or not."""

    content: list[JSONObject] = field(default_factory=list)
    stop_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    complete: bool = False  # message_stop arrived


def block_to_param(block: ContentBlock) -> JSONObject:
    """A response content block as the dict we store and send back next turn."""
    if block.type == "text":
        return {"type": "text", "text": block.text}
    if block.type == "tool_use":
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    if block.type == "thinking":
        return {"type": "thinking", "thinking": block.thinking, "signature": block.signature}
    if block.type == "redacted_thinking":
        return {"type": "redacted_thinking", "data": block.data}
    return block.model_dump(mode="json", exclude_none=True)


def _transport_errors() -> tuple[type[BaseException], ...]:
    found: list[type[BaseException]] = []
    for name in ("httpx2", "httpx"):
        try:
            mod = __import__(name)
            found.append(mod.HTTPError)
            found.append(mod.StreamError)
        except Exception:
            continue
    return tuple(found)


class StreamBroke(errors.AIServiceError):
    """The response started but did not finish. Nothing from it was used, so it can be
    requested again; the SDK does not retry once a stream has begun."""


def stream_turn(
    client: anthropic.Anthropic,
    params: JSONObject,
    *,
    on_text: Callable[[str], None] | None = None,
) -> Turn:
    """Stream one response. Raises AIServiceError when the API fails (after the SDK's
    retries) and StreamBroke when a started response breaks off.

    Callers must not act on the tool_use blocks of an incomplete response: their input may
    be cut.
    """
    import anthropic

    turn = Turn()
    model = params.get("model", "")
    started = False
    try:
        with client.messages.stream(**params) as stream:
            for event in stream:
                started = True
                if event.type == "text" and on_text is not None:
                    on_text(event.text)
                elif event.type == "message_stop":
                    turn.complete = True
            try:
                snapshot = stream.current_message_snapshot
            except AssertionError:  # the body ended before message_start
                snapshot = None
    except anthropic.APIStatusError as exc:
        if started:  # an SSE `error` event inside a 200 response
            raise StreamBroke(f"the AI service failed mid-response ({_error_detail(exc)})",
                              hint="the conversation is saved; resume with --continue") from None
        raise errors.AIServiceError(_status_line(exc), hint=_status_hint(exc.status_code)) from None
    except anthropic.APIConnectionError as exc:
        raise errors.AIServiceError(
            f"cannot reach the AI service at {client.base_url}: {exc.__cause__ or exc}",
            hint="check the network and ANTHROPIC_BASE_URL",
        ) from None
    except _transport_errors() as exc:
        raise StreamBroke(f"the AI service stream broke mid-way: {exc}",
                          hint="the conversation is saved; resume with --continue") from None
    if snapshot is None or not turn.complete:
        raise StreamBroke("the AI service stream ended before the response was complete; nothing from it was executed",
                          hint="the conversation is saved; resume with --continue")
    turn.content = [block_to_param(b) for b in snapshot.content]
    turn.stop_reason = snapshot.stop_reason
    turn.usage = usage_from(model, snapshot.usage)
    return turn


def _error_detail(exc: anthropic.APIStatusError) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error")
        err = inner if isinstance(inner, dict) else body
        return f"{err.get('type', '')}: {err.get('message', '')}".strip(": ")
    return str(exc)


def _status_line(exc: anthropic.APIStatusError) -> str:
    detail = _error_detail(exc)
    retried = exc.status_code in (408, 409, 429) or exc.status_code >= 500  # what the SDK retries
    return f"AI service error {exc.status_code}" + (f" ({detail})" if detail else "") + (" after retries" if retried else "")


def _status_hint(status: int) -> str | None:
    if status == 401:
        return "check ANTHROPIC_API_KEY"
    if status in (429, 529) or status >= 500:
        return "the service is busy or failing; the conversation is saved, resume with --continue"
    if status == 404:
        return "check the model name (--model / VPSAGENT_MODEL)"
    return None
