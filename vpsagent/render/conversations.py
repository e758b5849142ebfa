"""How a stored conversation reads: Markdown for an incident report, JSON for programs."""

from __future__ import annotations

import json

from vpsagent import errors
from vpsagent.jsondata import JSONObject
from vpsagent.redact import inert
from vpsagent.render import to_jsonable
from vpsagent.services.conversations import FORMATS, ConversationDetail


def _block_md(block: JSONObject, tool_names: dict[str, str]) -> str:
    t = block.get("type")
    if t == "text":
        text: str = block.get("text", "")
        return text
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


def export(detail: ConversationDetail, fmt: str = "md") -> str:
    """The conversation as Markdown (for people) or JSON (the stored messages, for programs)."""
    if fmt not in FORMATS:
        raise errors.InvalidInput(f"unknown format {fmt!r}; use md or json")
    if fmt == "json":
        return json.dumps(to_jsonable(detail), indent=2, ensure_ascii=False) + "\n"
    c = detail.conversation
    lines = [
        f"# {c.title or 'Conversation'} (#{c.id})",
        "",
        f"- model: {c.model}",
        f"- servers: {', '.join(c.servers)}",
        f"- started: {c.created_at.isoformat(timespec='seconds')}",
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
    # tool results are server output: read on a terminal or in a viewer, never live escapes
    return inert("\n".join(lines).rstrip()) + "\n"
