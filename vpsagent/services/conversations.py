"""Stored conversations: list, show, export (Markdown or JSON).

What is stored is what the model saw: tool results are already bounded and redacted
before they are sent, so an export holds no stored credential.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from vpsagent import errors
from vpsagent.jsondata import JSONObject

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from vpsagent.db.models import Conversation

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
    messages: list[JSONObject] = field(default_factory=list)  # {seq, role, content, created_at}


def _summary(conv: Conversation, n_messages: int) -> ConversationSummary:
    assert conv.id is not None, "a stored conversation has its id"
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
    from sqlmodel import col, select

    from vpsagent.db.engine import session_scope
    from vpsagent.db.models import Conversation, Message

    if limit < 1:
        raise errors.InvalidInput("--limit must be at least 1")
    with session_scope(engine) as s:
        q = select(Conversation)
        if mode:
            q = q.where(Conversation.mode == mode)
        convs = s.exec(q.order_by(col(Conversation.updated_at).desc(), col(Conversation.id).desc()).limit(limit)).all()
        ids = [c.id for c in convs]
        counts: dict[int | None, int] = {}
        if ids:
            rows = s.exec(
                select(Message.conversation_id, func.count()).where(col(Message.conversation_id).in_(ids))
                .group_by(col(Message.conversation_id))
            ).all()
            counts = {cid: n for cid, n in rows}
        return [_summary(c, counts.get(c.id, 0)) for c in convs]


def show_conversation(engine: Engine, conversation_id: int) -> ConversationDetail:
    from sqlmodel import col, select

    from vpsagent.db.engine import session_scope
    from vpsagent.db.models import Conversation, Message

    with session_scope(engine) as s:
        conv = s.get(Conversation, conversation_id)
        if conv is None:
            raise errors.NotFound(f"no conversation {conversation_id}", hint="`vpsagent conversations list` shows them")
        rows = s.exec(select(Message).where(Message.conversation_id == conversation_id).order_by(col(Message.seq))).all()
        msgs: list[JSONObject] = [{"seq": r.seq, "role": r.role, "content": list(r.content), "created_at": r.created_at} for r in rows]
        return ConversationDetail(_summary(conv, len(msgs)), msgs)
