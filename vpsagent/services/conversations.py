"""Stored conversations: list, show, export (Markdown or JSON).

What is stored is what the model saw: tool results are already bounded and redacted
before they are sent, so an export holds no stored credential.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from vpsagent import errors

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

FORMATS = ("md", "json")


@dataclass
class ConversationSummary:
    id: int
    mode: str
    title: str
    model: str
    servers: list[str]
    status: str
    messages: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_usd: float
    created_at: datetime
    updated_at: datetime


@dataclass
class ConversationDetail:
    conversation: ConversationSummary
    messages: list[dict[str, Any]] = field(default_factory=list)  # {seq, role, content, created_at}


def _summary(conv: Any, n_messages: int) -> ConversationSummary:
    return ConversationSummary(
        id=conv.id,
        mode=conv.mode,
        title=conv.title,
        model=conv.model,
        servers=list(conv.servers or []),
        status=conv.status,
        messages=n_messages,
        input_tokens=conv.input_tokens,
        output_tokens=conv.output_tokens,
        cache_read_tokens=conv.cache_read_tokens,
        cache_write_tokens=conv.cache_write_tokens,
        cost_usd=round(conv.cost_usd, 6),
        created_at=conv.created_at,
        updated_at=conv.updated_at,
    )


def list_conversations(engine: Engine, *, mode: str | None = None, limit: int = 50) -> list[ConversationSummary]:
    from sqlalchemy import func
    from sqlmodel import select

    from vpsagent.db.engine import session_scope
    from vpsagent.db.models import Conversation, Message

    if limit < 1:
        raise errors.InvalidInput("--limit must be at least 1")
    with session_scope(engine) as s:
        q = select(Conversation)
        if mode:
            q = q.where(Conversation.mode == mode)
        convs = s.exec(q.order_by(Conversation.updated_at.desc(), Conversation.id.desc()).limit(limit)).all()
        ids = [c.id for c in convs]
        counts: dict[int, int] = {}
        if ids:
            rows = s.exec(
                select(Message.conversation_id, func.count()).where(Message.conversation_id.in_(ids)).group_by(Message.conversation_id)
            ).all()
            counts = {cid: n for cid, n in rows}
        return [_summary(c, counts.get(c.id, 0)) for c in convs]


def show_conversation(engine: Engine, conversation_id: int) -> ConversationDetail:
    from sqlmodel import select

    from vpsagent.db.engine import session_scope
    from vpsagent.db.models import Conversation, Message

    with session_scope(engine) as s:
        conv = s.get(Conversation, conversation_id)
        if conv is None:
            raise errors.NotFound(f"no conversation {conversation_id}", hint="`vpsagent conversations list` shows them")
        rows = s.exec(select(Message).where(Message.conversation_id == conversation_id).order_by(Message.seq)).all()
        msgs = [{"seq": r.seq, "role": r.role, "content": list(r.content), "created_at": r.created_at} for r in rows]
        return ConversationDetail(_summary(conv, len(msgs)), msgs)


def _block_md(block: dict[str, Any], tool_names: dict[str, str]) -> str:
    t = block.get("type")
    if t == "text":
        return block.get("text", "")
    if t == "tool_use":
        tool_names[block.get("id", "")] = block.get("name", "")
        inp = block.get("input") or {}
        if block.get("name") == "run_command":
            return f"**run_command** on `{inp.get('server')}`:\n\n```sh\n{inp.get('command', '')}\n```"
        return f"**{block.get('name')}** `{json.dumps(inp)[:2000]}`"
    if t == "tool_result":
        c = block.get("content", "")
        if isinstance(c, list):
            c = "".join(p.get("text", "") for p in c if isinstance(p, dict))
        err = " (error)" if block.get("is_error") else ""
        name = tool_names.get(block.get("tool_use_id", ""), "tool")
        return f"<details><summary>{name} result{err}</summary>\n\n```\n{c}\n```\n</details>"
    return f"_[{t} block]_"


def export_conversation(engine: Engine, conversation_id: int, fmt: str = "md") -> str:
    """The conversation as Markdown (for people) or JSON (the stored messages, for programs)."""
    from vpsagent.render import to_jsonable

    if fmt not in FORMATS:
        raise errors.InvalidInput(f"unknown format {fmt!r}; use md or json")
    detail = show_conversation(engine, conversation_id)
    if fmt == "json":
        return json.dumps(to_jsonable(detail), indent=2, ensure_ascii=False) + "\n"
    c = detail.conversation
    lines = [
        f"# {c.title or 'Conversation'} (#{c.id})",
        "",
        f"- model: {c.model}",
        f"- servers: {', '.join(c.servers)}",
        f"- started: {c.created_at.isoformat()}",
        f"- tokens: {c.input_tokens} in, {c.output_tokens} out, {c.cache_read_tokens} cache read, {c.cache_write_tokens} cache write; est. ${c.cost_usd:.4f}",
        "",
    ]
    tool_names: dict[str, str] = {}
    for m in detail.messages:
        blocks = m["content"]
        only_results = blocks and all(b.get("type") == "tool_result" for b in blocks)
        heading = "Tool results" if only_results else ("User" if m["role"] == "user" else "Assistant")
        lines += [f"## {heading}", ""]
        for b in blocks:
            lines += [_block_md(b, tool_names), ""]
    return "\n".join(lines).rstrip() + "\n"
