"""The fake Messages API itself, through the real SDK: if this drifts from what the SDK
parses, every agent test would be testing a fiction."""

from __future__ import annotations

import anthropic
import pytest

from tests.fakes.anthropic_api import (
    Broken,
    FakeAnthropicAPI,
    StreamError,
    overloaded,
    rate_limited,
    server_error,
    text,
    tool_use,
    tool_uses,
)

MSG = [{"role": "user", "content": "hi"}]


@pytest.fixture
def api():
    with FakeAnthropicAPI() as fake:
        yield fake


def _client(api: FakeAnthropicAPI, retries: int = 2) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="test", base_url=api.url, max_retries=retries)


def test_json_response_parses_into_sdk_types(api):
    api.push(tool_uses([("run_command", {"server": "a", "command": "df -h"}, "toolu_1"), ("list_servers", {})],
                       text="Checking."))
    msg = _client(api).messages.create(model="claude-x", max_tokens=10, messages=MSG)
    assert msg.model == "claude-x" and msg.stop_reason == "tool_use"
    assert [b.type for b in msg.content] == ["text", "tool_use", "tool_use"]
    assert msg.content[1].input == {"server": "a", "command": "df -h"} and msg.content[1].id == "toolu_1"
    assert msg.content[2].input == {}
    assert api.last["messages"] == MSG and "stream" not in api.last


def test_streaming_accumulates_text_tool_input_and_usage(api):
    api.push(tool_use("run_command", {"server": "a", "command": "x" * 100}, text="Let me check " * 5,
                      usage={"input_tokens": 7, "output_tokens": 9, "cache_creation_input_tokens": 11,
                             "cache_read_input_tokens": 13}))
    with _client(api).messages.stream(model="m", max_tokens=10, messages=MSG) as s:
        kinds = [e.type for e in s]
        snap = s.current_message_snapshot
    assert kinds.count("text") > 3 and kinds.count("input_json") > 3  # really in pieces
    assert kinds[-1] == "message_stop"
    assert snap.content[0].text == "Let me check " * 5
    assert snap.content[1].input == {"server": "a", "command": "x" * 100}
    u = snap.usage
    assert (u.input_tokens, u.output_tokens, u.cache_creation_input_tokens, u.cache_read_input_tokens) == (7, 9, 11, 13)
    assert api.last["stream"] is True


@pytest.mark.parametrize(("reply", "exc", "status"), [
    (overloaded(), anthropic.InternalServerError, 529),
    (rate_limited(), anthropic.RateLimitError, 429),
    (server_error(), anthropic.InternalServerError, 500),
])
def test_errors_have_the_api_shape_and_are_retried_by_the_sdk(api, reply, exc, status):
    api.always(reply)
    with pytest.raises(exc) as info:
        _client(api, retries=1).messages.create(model="m", max_tokens=10, messages=MSG)
    assert info.value.status_code == status
    assert info.value.body["type"] == "error" and info.value.body["error"]["type"] == reply.error_type
    assert len(api.requests) == 2


def test_broken_stream_is_a_transport_error_and_eof_an_early_end(api):
    api.push(Broken(text("abcdefghij" * 10), after=4), Broken(text("abcdefghij" * 10), after=4, mode="eof"))
    c = _client(api)
    with pytest.raises(Exception) as info:
        with c.messages.stream(model="m", max_tokens=10, messages=MSG) as s:
            list(s)
    assert not isinstance(info.value, anthropic.APIStatusError)
    with c.messages.stream(model="m", max_tokens=10, messages=MSG) as s:
        kinds = [e.type for e in s]
    assert "message_stop" not in kinds and kinds[0] == "message_start"


def test_error_event_mid_stream_raises_a_status_error(api):
    api.push(StreamError(text("abc" * 30), after=4))
    with pytest.raises(anthropic.APIStatusError) as info:
        with _client(api).messages.stream(model="m", max_tokens=10, messages=MSG) as s:
            list(s)
    assert info.value.body["error"]["type"] == "overloaded_error"


def test_queue_then_handler_then_always_and_unscripted_requests_fail_loudly(api):
    c = _client(api, retries=0)
    api.push("from the queue")
    api.handler = lambda req: text("from the handler") if "handler" in str(req["messages"]) else None
    api.always(text("always"))
    ask = lambda q: c.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": q}])  # noqa: E731
    assert ask("a").content[0].text == "from the queue"
    assert ask("use the handler").content[0].text == "from the handler"
    assert ask("other").content[0].text == "always"
    api.always(None)
    with pytest.raises(anthropic.BadRequestError):
        ask("nothing scripted")
    assert api.failures and "no reply scripted" in api.failures[0]


def test_all_strings_unescapes_what_all_bodies_escapes(api):
    api.push("ok")
    _client(api).messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "line1\nline2"}])
    assert "line1\nline2" not in api.all_bodies() and "line1\\nline2" in api.all_bodies()
    assert "line1\nline2" in api.all_strings()


def test_fixture_points_the_environment_at_the_fake(anthropic_api, settings):
    assert settings.anthropic_base_url == anthropic_api.url
    assert settings.anthropic_api_key is not None
    from vpsagent.agent.client import make_client

    anthropic_api.push("hello")
    msg = make_client(settings).messages.create(model="m", max_tokens=5, messages=MSG)
    assert msg.content[0].text == "hello"
    sent = anthropic_api.headers[-1]
    key = settings.anthropic_api_key.reveal_str()
    assert sent.get("x-api-key") == key or sent.get("authorization") == f"Bearer {key}"
