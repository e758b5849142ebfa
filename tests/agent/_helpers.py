"""Small readers for what the agent left behind: the audit log, conversations, requests."""

from __future__ import annotations

import os
import select
import time
from typing import Any

from tests.fakes.anthropic_api import FakeAnthropicAPI


def history(engine: Any, *, probes: bool = False, **where: Any) -> list[Any]:
    """command_history rows (detached), oldest first, filtered by column == value.

    vpsagent's own probe for a read-only sandbox (source `sandbox`) is left out unless
    `probes`: these tests look at the commands the model asked for."""
    from sqlmodel import select

    from vpsagent.db.engine import session_scope
    from vpsagent.db.models import CommandHistory

    with session_scope(engine) as s:
        q = select(CommandHistory)
        if not probes and "source" not in where:
            q = q.where(CommandHistory.source != "sandbox")
        for k, v in where.items():
            q = q.where(getattr(CommandHistory, k) == v)
        rows = s.exec(q.order_by(CommandHistory.id)).all()
        for r in rows:
            s.expunge(r)
        return list(rows)


def conversation(engine: Any, conversation_id: int) -> tuple[Any, list[Any]]:
    """(Conversation, [Message...]) as stored."""
    from sqlmodel import select

    from vpsagent.db.engine import session_scope
    from vpsagent.db.models import Conversation, Message

    with session_scope(engine) as s:
        conv = s.get(Conversation, conversation_id)
        assert conv is not None, f"conversation {conversation_id} is not stored"
        msgs = s.exec(select(Message).where(Message.conversation_id == conversation_id).order_by(Message.seq)).all()
        s.expunge(conv)
        for m in msgs:
            s.expunge(m)
        return conv, list(msgs)


def conversations(engine: Any) -> list[Any]:
    from sqlmodel import select

    from vpsagent.db.engine import session_scope
    from vpsagent.db.models import Conversation

    with session_scope(engine) as s:
        rows = s.exec(select(Conversation).order_by(Conversation.id)).all()
        for r in rows:
            s.expunge(r)
        return list(rows)


def tool_result(api: FakeAnthropicAPI, tool_use_id: str) -> dict[str, Any]:
    """The tool_result block the model was sent for `tool_use_id` (first request holding it)."""
    for body in api.requests:
        for msg in body.get("messages", []):
            if msg.get("role") != "user" or isinstance(msg.get("content"), str):
                continue
            for b in msg["content"]:
                if b.get("type") == "tool_result" and b.get("tool_use_id") == tool_use_id:
                    return b
    raise AssertionError(f"the model was never sent a tool_result for {tool_use_id}")


def result_text(block: dict[str, Any]) -> str:
    return FakeAnthropicAPI.result_text(block)


def read_until(fd: int, needle: bytes | None, timeout: float = 60.0) -> bytes:
    """Read the terminal until `needle` shows up (None: until the program closes it)."""
    buf = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle is not None and needle in buf:
            return buf
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the other side is closed
            break
        if not chunk:
            break
        buf += chunk
    if needle is not None and needle not in buf:
        raise AssertionError(f"{needle!r} never appeared on the terminal; got:\n{buf.decode(errors='replace')}")
    return buf
