"""A local HTTP server that speaks the Anthropic Messages API, for the real `anthropic` SDK.

The SDK is never mocked: tests point it at this server with `ANTHROPIC_BASE_URL`, and the
server answers `POST /v1/messages` the way the API does — a JSON `Message`, or (when the
body says `"stream": true`, which `client.messages.stream` does) Server-Sent Events:

    message_start · ping · (content_block_start · content_block_delta* · content_block_stop)*
    · message_delta {stop_reason, usage} · message_stop

Text arrives as several `text_delta`s and tool input as several `input_json_delta`s, so the
SDK's accumulator does real work. Errors use the API's JSON shape
(`{"type": "error", "error": {"type": ..., "message": ...}}`) with the status codes the SDK
retries (429, 529, 500) and a short `retry-after-ms` so its backoff does not slow the suite.

Each test scripts what the "model" does:

    api.push(tool_use("run_command", {"server": "t1", "command": "df -h"}), text("Disk is fine."))
    api.handler = lambda req: text("ok")      # computed from the request (after the queue)
    api.always(overloaded())                  # when the queue is empty and there is no handler

    api.requests        # every request body the SDK sent, parsed (retries included)
    api.all_bodies()    # the raw bodies as one string: grep it for secrets
    api.all_strings()   # every JSON string value, unescaped (multi-line secrets match)

Faults: `Broken(reply, after=N)` sends N stream events and drops the connection (the SDK
sees a transport error); `Broken(reply, after=N, mode="eof")` ends the body cleanly but
early (no message_stop); `StreamError(after=N)` sends an SSE `error` event mid-stream, as
the API does when it becomes overloaded after answering 200.

A reply may be given as a plain `str` (a text answer) anywhere a Reply is accepted.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

FAKE_API_KEY = "fake-anthropic-key-for-tests-0123456789"

DEFAULT_USAGE: dict[str, int] = {
    "input_tokens": 100,
    "output_tokens": 20,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
}


# --------------------------------------------------------------------------- replies


@dataclass
class Reply:
    """One scripted response.

    `content` holds API content blocks (`{"type": "text", "text": ...}`,
    `{"type": "tool_use", "id": ..., "name": ..., "input": {...}}`). `status` other than 200
    makes it an error reply with `error_type` / `message`. `usage` overrides DEFAULT_USAGE
    keys. `chunk` is the size of each text/JSON delta; `delay` the pause between events.
    """

    content: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str | None = "end_turn"
    usage: dict[str, int] = field(default_factory=dict)
    status: int = 200
    error_type: str | None = None
    message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    model: str | None = None  # default: the model the request asked for
    chunk: int = 7
    delay: float = 0.0

    @property
    def is_error(self) -> bool:
        return self.status != 200

    def full_usage(self) -> dict[str, int]:
        return {**DEFAULT_USAGE, **self.usage}


@dataclass
class Broken:
    """Send the first `after` SSE events of `reply`, then stop.

    mode "cut": drop the connection mid-body (chunked encoding left unfinished: the SDK's
    HTTP client raises a transport error). mode "eof": finish the body cleanly, so the
    stream just ends without message_stop. A non-streaming request gets half a JSON body
    and a dropped connection either way.
    """

    reply: Reply | str | None = None
    after: int = 3
    mode: str = "cut"


@dataclass
class StreamError:
    """Send the first `after` SSE events of `reply`, then an SSE `error` event (HTTP 200)."""

    reply: Reply | str | None = None
    after: int = 3
    error_type: str = "overloaded_error"
    message: str = "Overloaded"


ReplyLike = Reply | Broken | StreamError | str


def _tool_id() -> str:
    return "toolu_" + uuid.uuid4().hex[:24]


def text(body: str, stop_reason: str = "end_turn", **kw: Any) -> Reply:
    """A text answer (`stop_reason` may be max_tokens, refusal, pause_turn, ...)."""
    return Reply(content=[{"type": "text", "text": body}], stop_reason=stop_reason, **kw)


def tool_use(name: str, input: dict[str, Any] | None = None, id: str | None = None, *,
             text: str | None = None, stop_reason: str = "tool_use", **kw: Any) -> Reply:
    """One tool call (optionally preceded by some text), stop_reason tool_use."""
    return tool_uses([(name, input or {}, id)], text=text, stop_reason=stop_reason, **kw)


def tool_uses(calls: Iterable[Any], *, text: str | None = None, stop_reason: str = "tool_use", **kw: Any) -> Reply:
    """Several tool calls in one response. Each call is `(name, input)`, `(name, input, id)`,
    or a dict `{"name", "input", "id"?}`."""
    content: list[dict[str, Any]] = []
    if text:
        content.append({"type": "text", "text": text})
    for c in calls:
        if isinstance(c, dict):
            name, inp, cid = c["name"], c.get("input", {}), c.get("id")
        else:
            name, inp, cid = (tuple(c) + (None,))[:3]
        content.append({"type": "tool_use", "id": cid or _tool_id(), "name": name, "input": inp or {}})
    return Reply(content=content, stop_reason=stop_reason, **kw)


def error(status: int, error_type: str, message: str, **kw: Any) -> Reply:
    return Reply(status=status, error_type=error_type, message=message, stop_reason=None, **kw)


def overloaded(message: str = "Overloaded") -> Reply:
    return error(529, "overloaded_error", message)


def rate_limited(message: str = "Number of request tokens has exceeded your per-minute rate limit") -> Reply:
    return error(429, "rate_limit_error", message)


def server_error(message: str = "Internal server error") -> Reply:
    return error(500, "api_error", message)


def invalid_request(message: str = "invalid request") -> Reply:
    return error(400, "invalid_request_error", message)


def _as_reply(r: Reply | str | None) -> Reply:
    if r is None:
        return text("This answer was cut off before it")
    if isinstance(r, str):
        return text(r)
    return r


# --------------------------------------------------------------------------- wire format


def _split(s: str, n: int) -> list[str]:
    n = max(1, n)
    return [s[i : i + n] for i in range(0, len(s), n)] or [""]


def message_json(reply: Reply, model: str) -> dict[str, Any]:
    return {
        "id": "msg_" + uuid.uuid4().hex[:24],
        "type": "message",
        "role": "assistant",
        "model": reply.model or model,
        "content": reply.content,
        "stop_reason": reply.stop_reason,
        "stop_sequence": None,
        "usage": reply.full_usage(),
    }


def sse_events(reply: Reply, model: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The events of a streamed response, in the API's order."""
    usage = reply.full_usage()
    start_usage = {**usage, "output_tokens": 1}
    msg = message_json(reply, model)
    yield "message_start", {"type": "message_start", "message": {**msg, "content": [], "stop_reason": None, "usage": start_usage}}
    yield "ping", {"type": "ping"}
    for index, block in enumerate(reply.content):
        kind = block.get("type")
        if kind == "text":
            yield "content_block_start", {"type": "content_block_start", "index": index,
                                          "content_block": {"type": "text", "text": ""}}
            for piece in _split(block.get("text", ""), reply.chunk):
                yield "content_block_delta", {"type": "content_block_delta", "index": index,
                                              "delta": {"type": "text_delta", "text": piece}}
        elif kind == "tool_use":
            yield "content_block_start", {"type": "content_block_start", "index": index,
                                          "content_block": {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}}
            raw = json.dumps(block.get("input") or {}) if block.get("input") else ""
            for piece in _split(raw, reply.chunk):
                yield "content_block_delta", {"type": "content_block_delta", "index": index,
                                              "delta": {"type": "input_json_delta", "partial_json": piece}}
        elif kind == "thinking":
            yield "content_block_start", {"type": "content_block_start", "index": index,
                                          "content_block": {"type": "thinking", "thinking": "", "signature": ""}}
            yield "content_block_delta", {"type": "content_block_delta", "index": index,
                                          "delta": {"type": "thinking_delta", "thinking": block.get("thinking", "")}}
            yield "content_block_delta", {"type": "content_block_delta", "index": index,
                                          "delta": {"type": "signature_delta", "signature": block.get("signature", "sig")}}
        else:
            yield "content_block_start", {"type": "content_block_start", "index": index, "content_block": block}
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    # message_delta usage is cumulative (the SDK overwrites the snapshot's counts with it)
    yield "message_delta", {"type": "message_delta",
                            "delta": {"stop_reason": reply.stop_reason, "stop_sequence": None},
                            "usage": usage}
    yield "message_stop", {"type": "message_stop"}


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def error_body(error_type: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message},
            "request_id": "req_" + uuid.uuid4().hex[:24]}


# --------------------------------------------------------------------------- the server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's connection pool expects
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet test output
        pass

    def _send_json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", body.get("request_id") or "req_" + uuid.uuid4().hex[:24])
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        if self.path.rstrip("/").endswith("/v1/models"):
            self._send_json(200, {"data": [], "has_more": False, "first_id": None, "last_id": None})
            return
        self._send_json(404, error_body("not_found_error", f"fake API: no route GET {self.path}"))

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = self.path.split("?")[0].rstrip("/")
        if not path.endswith("/v1/messages"):
            self._send_json(404, error_body("not_found_error", f"fake API: no route POST {self.path}"),
                            {"x-should-retry": "false"})
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._send_json(400, error_body("invalid_request_error", "fake API: body is not JSON"), {"x-should-retry": "false"})
            return
        api = self.server.api
        api._record(raw, body, dict(self.headers.items()))
        try:
            reply = api._next_reply(body)
        except Exception as exc:  # a broken test handler: say so loudly, do not let the SDK retry it
            api.failures.append(f"handler raised {exc!r}")
            self._send_json(400, error_body("invalid_request_error", f"fake API handler raised {exc!r}"), {"x-should-retry": "false"})
            return
        if reply is None:
            msg = f"fake API: no reply scripted for request #{len(api.requests)}"
            api.failures.append(msg)
            self._send_json(400, error_body("invalid_request_error", msg), {"x-should-retry": "false"})
            return
        model = str(body.get("model") or "claude-test")
        stream = bool(body.get("stream"))
        if isinstance(reply, Broken):
            self._broken(_as_reply(reply.reply), model, stream, reply.after, reply.mode)
        elif isinstance(reply, StreamError):
            self._stream(_as_reply(reply.reply), model, cut_after=reply.after,
                         error_event=error_body(reply.error_type, reply.message))
        else:
            r = _as_reply(reply)
            if r.is_error:
                headers = {"retry-after-ms": str(api.retry_after_ms), "x-should-retry": "true" if r.status in (408, 409, 429) or r.status >= 500 else "false"}
                headers.update(r.headers)
                self._send_json(r.status, error_body(r.error_type or "api_error", r.message or "error"), headers)
            elif stream:
                self._stream(r, model)
            else:
                self._send_json(200, message_json(r, model), r.headers)

    # -- streaming

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _start_stream(self, reply: Reply) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("request-id", "req_" + uuid.uuid4().hex[:24])
        for k, v in reply.headers.items():
            self.send_header(k, v)
        self.end_headers()

    def _stream(self, reply: Reply, model: str, *, cut_after: int | None = None,
                error_event: dict[str, Any] | None = None) -> None:
        self._start_stream(reply)
        try:
            for n, (event, data) in enumerate(sse_events(reply, model)):
                if cut_after is not None and n >= cut_after:
                    break
                self._chunk(_sse(event, data))
                if reply.delay:
                    time.sleep(reply.delay)
            if error_event is not None:
                self._chunk(_sse("error", error_event))
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):  # the client went away (Ctrl-C test)
            self.close_connection = True

    def _broken(self, reply: Reply, model: str, stream: bool, after: int, mode: str) -> None:
        if not stream:
            data = json.dumps(message_json(reply, model)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self._drop()
            return
        if mode == "eof":
            self._stream(reply, model, cut_after=after)
            return
        self._start_stream(reply)
        try:
            for event, data in itertools.islice(sse_events(reply, model), after):
                self._chunk(_sse(event, data))
            # half an event, as a connection lost mid-write leaves it
            self.wfile.write(b"40\r\nevent: content_block_delta\ndata: {\"type\": \"content_bl")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        self._drop()

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    api: FakeAnthropicAPI

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-reply (Ctrl-C tests, cut streams) is normal here.
        # socketserver would print a traceback to sys.stderr, which in-process CLI tests
        # capture as vpsagent's own stderr; record it instead.
        import sys as _sys

        self.api.disconnects.append(f"{client_address}: {_sys.exc_info()[1]!r}")


class FakeAnthropicAPI:
    """The Messages API on 127.0.0.1:<free port>. Use as a context manager or start()/stop()."""

    def __init__(self, host: str = "127.0.0.1", *, retry_after_ms: int = 5):
        self.host = host
        self.retry_after_ms = retry_after_ms
        self.requests: list[dict[str, Any]] = []
        self.raw_bodies: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        self.failures: list[str] = []  # requests nothing was scripted for
        self.disconnects: list[str] = []  # clients that hung up mid-reply
        self.handler: Callable[[dict[str, Any]], ReplyLike | None] | None = None
        self._queue: deque[ReplyLike] = deque()
        self._always: ReplyLike | None = None
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- scripting

    def push(self, *replies: ReplyLike) -> FakeAnthropicAPI:
        """Queue replies, answered in order, one per request (retries included)."""
        with self._lock:
            self._queue.extend(replies)
        return self

    def always(self, reply: ReplyLike | None) -> FakeAnthropicAPI:
        """The reply for every request once the queue is empty and no handler answers."""
        self._always = reply
        return self

    def _next_reply(self, body: dict[str, Any]) -> ReplyLike | None:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self.handler is not None:
            r = self.handler(body)
            if r is not None:
                return r
        return self._always

    @property
    def pending(self) -> int:
        """Replies still queued (a test that scripted more than was used may want to know)."""
        return len(self._queue)

    def _record(self, raw: bytes, body: dict[str, Any], headers: dict[str, str]) -> None:
        with self._lock:
            self.raw_bodies.append(raw)
            self.requests.append(body)
            self.headers.append({k.lower(): v for k, v in headers.items()})

    # -- inspection

    def all_bodies(self) -> str:
        """Every request body as sent (JSON text, strings escaped), one per line."""
        return "\n".join(b.decode("utf-8", "replace") for b in self.raw_bodies)

    def all_strings(self) -> str:
        """Every JSON string value of every request, unescaped, one per line."""
        out: list[str] = []

        def walk(v: Any) -> None:
            if isinstance(v, str):
                out.append(v)
            elif isinstance(v, dict):
                for k, x in v.items():
                    out.append(str(k))
                    walk(x)
            elif isinstance(v, list):
                for x in v:
                    walk(x)

        for body in self.requests:
            walk(body)
        return "\n".join(out)

    @property
    def last(self) -> dict[str, Any]:
        assert self.requests, "the fake API received no request"
        return self.requests[-1]

    def tool_results(self, request: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """The tool_result blocks of the last user message of `request` (default: the last one)."""
        req = request if request is not None else self.last
        msgs = req.get("messages") or []
        if not msgs or msgs[-1].get("role") != "user" or isinstance(msgs[-1].get("content"), str):
            return []
        return [b for b in msgs[-1]["content"] if b.get("type") == "tool_result"]

    @staticmethod
    def result_text(block: dict[str, Any]) -> str:
        c = block.get("content", "")
        if isinstance(c, list):
            return "".join(p.get("text", "") for p in c if isinstance(p, dict))
        return str(c)

    # -- lifecycle

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake API first"
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> FakeAnthropicAPI:
        self._server = _Server((self.host, 0), _Handler)
        self._server.api = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-anthropic-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeAnthropicAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture
def anthropic_api(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAnthropicAPI]:
    """A running FakeAnthropicAPI with ANTHROPIC_BASE_URL and a fake ANTHROPIC_API_KEY set.

    When the test also uses `home` (which scrubs the environment), `home` is set up first
    so these variables survive it; list `anthropic_api` before `settings` in the test's
    arguments so the loaded settings see them.
    """
    if "home" in request.fixturenames:
        request.getfixturevalue("home")
    api = FakeAnthropicAPI().start()
    monkeypatch.setenv("ANTHROPIC_BASE_URL", api.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_API_KEY)
    try:
        yield api
    finally:
        api.stop()
