"""A real, scriptable Anthropic Messages streaming server for tests.

It listens on 127.0.0.1 (loopback only) on an ephemeral port, in its own thread with its own
event loop, and speaks the wire format of ``POST /v1/messages`` with ``stream: true``:
``Content-Type: text/event-stream``, chunked transfer encoding, one ``event: TYPE\\ndata: {json}\\n\\n``
event per HTTP chunk, in Anthropic's order: ``message_start``, ``content_block_start``, ``ping``,
one ``content_block_delta`` per text delta, ``content_block_stop``, ``message_delta`` (stop reason
and output tokens), ``message_stop``.

Each request is answered from a ``Script``: the text deltas, the token counts, and an optional
fault (an HTTP error status with Anthropic's JSON error body, a connection closed before any
response or mid-body, a malformed event, an in-stream ``error`` event, a body that ends without
``message_stop``, or a stall after K deltas). Every request received is recorded.

    with AnthropicSSEServer() as server:
        server.script = Script(deltas=["Hel", "lo"])
        provider = AnthropicProvider(base_url=server.base_url, api_key="k")
        ...
        assert server.requests[0].body["model"] == "m"

Like the real API, requests must carry an ``anthropic-version`` header and a key (``x-api-key``,
or ``Authorization: Bearer``, which the SDK uses since 2.0; ``x-api-key`` wins when both are
there); with ``expected_api_key`` set, any other key gets a 401.

The server is bounded: it stops by itself after ``max_lifetime_s``, stalls are capped, request
sizes are capped, and ``stop()`` cancels every open connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

import pytest

__all__ = [
    "AnthropicSSEServer",
    "RecordedRequest",
    "Script",
    "anthropic_sse_server",
]

Fault = Literal["hangup", "drop", "malformed", "stall", "error_event", "no_stop"]

_HOST = "127.0.0.1"
_MAX_REQUEST_BYTES = 1 << 20
_READ_TIMEOUT_S = 10.0
_REQUEST_ID = "req_test0123456789"
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Payload Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    529: "Site Overloaded",
}
# The error type and message the real API sends with each status.
_DEFAULT_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low to access the Anthropic API."),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "The requested resource could not be found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}


@dataclass
class Script:
    """How the server answers one request.

    ``status`` other than 200 answers with that HTTP status and Anthropic's error body
    ``{"type": "error", "error": {"type", "message"}, "request_id"}`` (``error_type`` and
    ``error_message`` override the defaults, ``error_code`` adds ``error.details.error_code``,
    ``retry_after`` adds a ``retry-after`` header,
    ``echo_key_in_error`` appends the request's key to the message, as a careless proxy might).

    Otherwise the response streams ``deltas`` (after a ``thinking`` block first, if ``thinking``
    is given). ``fault`` then strikes just before delta number ``fault_after``, or, when
    ``fault_after`` is at least the number of deltas, after ``message_delta`` and just before
    ``message_stop``:

    - ``hangup`` closes the connection before any response (``fault_after`` is ignored);
    - ``drop`` closes the connection mid-body (no terminating chunk);
    - ``malformed`` sends a ``content_block_delta`` whose JSON is cut off, then goes on;
    - ``stall`` sleeps ``stall_s`` seconds (capped by the server's ``max_stall_s``), then goes on;
    - ``error_event`` sends an ``error`` event (``stream_error_type``/``stream_error_message``)
      and ends the body, as the API does when it is overloaded mid-stream;
    - ``no_stop`` ends the body cleanly there, so ``message_stop`` never comes.

    ``send_usage`` False leaves ``usage`` out of every event, as some compatible servers do.
    """

    deltas: list[str] = field(default_factory=lambda: ["Hello", ", ", "world", "!"])
    thinking: list[str] | None = None
    input_tokens: int = 17
    output_tokens: int | None = None  # None: one per delta
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    send_usage: bool = True
    stop_reason: str = "end_turn"
    # When set, the answer is a call of this tool: the deltas are its input JSON in pieces
    # (``input_json_delta``), as when a request forces a tool (set stop_reason="tool_use").
    tool_use: str | None = None
    status: int = 200
    error_type: str | None = None
    error_message: str | None = None
    error_code: str | None = None
    retry_after: str | None = None
    echo_key_in_error: bool = False
    fault: Fault | None = None
    fault_after: int = 0
    stall_s: float = 30.0
    stream_error_type: str = "overloaded_error"
    stream_error_message: str = "Overloaded"


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any  # the parsed JSON body, or None if there was none or it was not JSON
    raw_body: bytes

    @property
    def api_key(self) -> str | None:
        """The key the request presented: ``x-api-key``, else the bearer token, else None."""
        return _presented_key(self.headers)


class _BadRequest(Exception):
    pass


class AnthropicSSEServer:
    """A scripted Anthropic Messages streaming server on 127.0.0.1 (see the module docstring)."""

    def __init__(
        self,
        *,
        expected_api_key: str | None = None,
        max_lifetime_s: float = 120.0,
        max_stall_s: float = 60.0,
    ) -> None:
        self.script = Script()
        # When set, picks the script from the request's JSON body (after any queued scripts).
        self.script_for: Callable[[Any], Script] | None = None
        self.expected_api_key = expected_api_key
        self._queue: deque[Script] = deque()
        self._max_lifetime_s = max_lifetime_s
        self._max_stall_s = max_stall_s
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._stall_started = threading.Event()
        self._client_gone_during_stall = threading.Event()
        self._completed_streams = 0

    # -- public API ----------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("server not started")
        return self._port

    @property
    def base_url(self) -> str:
        """The Anthropic-style base URL (``http://127.0.0.1:PORT``); the SDK appends ``/v1/messages``."""
        return f"http://{_HOST}:{self.port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the requests received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def completed_streams(self) -> int:
        """How many streamed responses were written to the end (``message_stop`` and final chunk)."""
        with self._lock:
            return self._completed_streams

    def enqueue(self, *scripts: Script) -> None:
        """Answer the next requests with these scripts, in order; then fall back to ``script``."""
        with self._lock:
            self._queue.extend(scripts)

    def wait_stall_started(self, timeout: float) -> bool:
        """Block until a ``stall`` fault has begun (thread-blocking: use ``asyncio.to_thread``)."""
        return self._stall_started.wait(timeout)

    def wait_client_disconnected_during_stall(self, timeout: float) -> bool:
        """Block until a client closed its connection while the server was stalling."""
        return self._client_gone_during_stall.wait(timeout)

    def start(self) -> AnthropicSSEServer:
        if self._thread is not None:
            raise RuntimeError("server already started")
        self._thread = threading.Thread(target=self._run, name="anthropic-sse-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10.0):
            raise RuntimeError("test server did not start within 10s")
        if self._startup_error is not None:
            raise RuntimeError("test server failed to start") from self._startup_error
        return self

    def stop(self) -> None:
        loop, stop_event, thread = self._loop, self._stop_event, self._thread
        if loop is not None and stop_event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop already finished by itself
                loop.call_soon_threadsafe(stop_event.set)
        if thread is not None:
            thread.join(10.0)

    def __enter__(self) -> AnthropicSSEServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- server thread -------------------------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # pragma: no cover - surfaced through start()
            self._startup_error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        server = await asyncio.start_server(self._on_connection, _HOST, 0)
        self._port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_event.wait(), self._max_lifetime_s)
        finally:
            server.close()
            for task in list(self._handlers):
                task.cancel()
            if self._handlers:
                await asyncio.wait(self._handlers, timeout=5.0)
            await server.wait_closed()

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError, _BadRequest):
            pass
        except asyncio.CancelledError:
            pass  # the server is stopping
        finally:
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(writer.wait_closed(), 2.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # One request per connection: every response says ``Connection: close``.
        method, path, headers, raw = await asyncio.wait_for(_read_request(reader), _READ_TIMEOUT_S)
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        with self._lock:
            self._requests.append(RecordedRequest(method, path, headers, body, raw))
            script = self._queue.popleft() if self._queue else self.script
            chooser = self.script_for
        if chooser is not None and script is self.script:
            script = chooser(body)

        if script.fault == "hangup":
            return  # the connection closes without a single byte of response
        if path.split("?", 1)[0].rstrip("/") != "/v1/messages":
            await _send_json_error(writer, 404, "not_found_error", f"Unknown path {path}", None)
            return
        if method != "POST":
            await _send_json_error(writer, 405, "invalid_request_error", "Use POST", None)
            return
        key = _presented_key(headers)
        if key is None:
            await _send_json_error(writer, 401, "authentication_error", "x-api-key header is required", None)
            return
        if self.expected_api_key is not None and key != self.expected_api_key:
            await _send_json_error(writer, 401, "authentication_error", "invalid x-api-key", None)
            return
        if not headers.get("anthropic-version"):
            await _send_json_error(
                writer, 400, "invalid_request_error", "anthropic-version: header is required", None
            )
            return
        if not isinstance(body, dict):
            await _send_json_error(writer, 400, "invalid_request_error", "Body is not a JSON object", None)
            return
        if script.status != 200:
            default_type, default_message = _DEFAULT_ERRORS.get(
                script.status, ("api_error" if script.status >= 500 else "invalid_request_error", "Error")
            )
            message = script.error_message or default_message
            if script.echo_key_in_error:
                message = f"{message} (key: {key})"
            await _send_json_error(
                writer,
                script.status,
                script.error_type or default_type,
                message,
                script.retry_after,
                code=script.error_code,
            )
            return
        if body.get("stream") is not True:
            await _send_json_error(
                writer,
                400,
                "invalid_request_error",
                "This test server only streams (stream must be true)",
                None,
            )
            return
        forced = body.get("tool_choice")
        if script.tool_use is None and isinstance(forced, dict) and forced.get("type") == "tool":
            # The API answers a request that forces a tool with that tool's call, whatever the
            # script's text: its deltas become the call's input, its end "tool_use".
            stop = "tool_use" if script.stop_reason == "end_turn" else script.stop_reason
            script = dataclasses.replace(script, tool_use=str(forced.get("name")), stop_reason=stop)
        await self._stream(reader, writer, body, script)

    async def _stream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, body: dict[str, Any], script: Script
    ) -> None:
        model = str(body.get("model", ""))
        output_tokens = script.output_tokens if script.output_tokens is not None else len(script.deltas)
        start_usage: dict[str, Any] = {"input_tokens": script.input_tokens, "output_tokens": 1}
        if script.cache_creation_input_tokens is not None:
            start_usage["cache_creation_input_tokens"] = script.cache_creation_input_tokens
        if script.cache_read_input_tokens is not None:
            start_usage["cache_read_input_tokens"] = script.cache_read_input_tokens
        message: dict[str, Any] = {
            "id": "msg_test0123456789",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
        }
        if script.send_usage:
            message["usage"] = start_usage

        writer.write(
            b"HTTP/1.1 200 OK\r\n"
            b"Content-Type: text/event-stream; charset=utf-8\r\n"
            b"Transfer-Encoding: chunked\r\n"
            b"Cache-Control: no-cache\r\n"
            b"Request-Id: " + _REQUEST_ID.encode() + b"\r\n"
            b"Connection: close\r\n\r\n"
        )
        await _send_event(writer, "message_start", {"type": "message_start", "message": message})

        index = 0
        if script.thinking is not None:
            await _send_event(
                writer,
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "thinking", "thinking": "", "signature": ""},
                },
            )
            for thought in script.thinking:
                await _send_event(
                    writer,
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "thinking_delta", "thinking": thought},
                    },
                )
            await _send_event(
                writer,
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "signature_delta", "signature": "c2lnbmF0dXJl"},
                },
            )
            await _send_event(writer, "content_block_stop", {"type": "content_block_stop", "index": index})
            index += 1

        block: dict[str, Any] = {"type": "text", "text": ""}
        if script.tool_use is not None:
            # A forced tool call: the deltas are the pieces of its input's JSON.
            block = {"type": "tool_use", "id": "toolu_01", "name": script.tool_use, "input": {}}
        await _send_event(
            writer,
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": block},
        )
        await _send_event(writer, "ping", {"type": "ping"})
        for number, text in enumerate(script.deltas):
            if number == script.fault_after and not await self._fault(reader, writer, script, index):
                return
            delta = (
                {"type": "text_delta", "text": text}
                if script.tool_use is None
                else {"type": "input_json_delta", "partial_json": text}
            )
            await _send_event(
                writer,
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            )
        await _send_event(writer, "content_block_stop", {"type": "content_block_stop", "index": index})
        message_delta: dict[str, Any] = {
            "type": "message_delta",
            "delta": {"stop_reason": script.stop_reason, "stop_sequence": None},
        }
        if script.send_usage:
            message_delta["usage"] = {"output_tokens": output_tokens}
        await _send_event(writer, "message_delta", message_delta)
        if script.fault_after >= len(script.deltas) and not await self._fault(reader, writer, script, index):
            return
        await _send_event(writer, "message_stop", {"type": "message_stop"})
        # Counted before the body ends: a client that has read it all must find the stream counted.
        with self._lock:
            self._completed_streams += 1
        await _end_body(writer)

    async def _fault(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, script: Script, index: int
    ) -> bool:
        """Inject ``script.fault`` (if any); return whether the response goes on afterwards."""
        if script.fault is None:
            return True
        if script.fault == "drop":
            # Close mid-body: the chunked body never gets its terminating zero-length chunk.
            await writer.drain()
            writer.close()
            return False
        if script.fault == "malformed":
            await _send_chunk(
                writer,
                b"event: content_block_delta\n"
                b'data: {"type": "content_block_delta", "index": %d, '
                b'"delta": {"type": "text_delta", "text": "x\n\n' % index,
            )
            return True
        if script.fault == "error_event":
            error = {
                "type": "error",
                "error": {"type": script.stream_error_type, "message": script.stream_error_message},
                "request_id": _REQUEST_ID,
            }
            await _send_event(writer, "error", error)
            await _end_body(writer)
            return False
        if script.fault == "no_stop":
            await _end_body(writer)
            return False
        # stall: wait, but notice a client that hangs up meanwhile.
        self._stall_started.set()
        try:
            eof = await asyncio.wait_for(reader.read(1), min(script.stall_s, self._max_stall_s))
        except TimeoutError:
            return True
        if eof == b"":
            self._client_gone_during_stall.set()
            return False
        return True


def _presented_key(headers: dict[str, str]) -> str | None:
    key = headers.get("x-api-key", "").strip()
    if key:
        return key
    scheme, _, token = headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    if len(head) > 64 * 1024:
        raise _BadRequest("headers too large")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise _BadRequest("bad request line")
    method, path, _version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise _BadRequest("bad header line")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = bytearray()
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            if len(body) + size > _MAX_REQUEST_BYTES:
                raise _BadRequest("body too large")
            body += await reader.readexactly(size)
            await reader.readexactly(2)
        return method, path, headers, bytes(body)
    length = int(headers.get("content-length", "0") or "0")
    if length < 0 or length > _MAX_REQUEST_BYTES:
        raise _BadRequest("body too large")
    raw = await reader.readexactly(length) if length else b""
    return method, path, headers, raw


async def _send_chunk(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(b"%x\r\n%s\r\n" % (len(data), data))
    await writer.drain()


async def _send_event(writer: asyncio.StreamWriter, event: str, data: dict[str, Any]) -> None:
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    await _send_chunk(writer, f"event: {event}\ndata: {payload}\n\n".encode())


async def _end_body(writer: asyncio.StreamWriter) -> None:
    writer.write(b"0\r\n\r\n")
    await writer.drain()


async def _send_json_error(
    writer: asyncio.StreamWriter,
    status: int,
    error_type: str,
    message: str,
    retry_after: str | None,
    *,
    code: str | None = None,
) -> None:
    error: dict[str, Any] = {"type": error_type, "message": message}
    if code is not None:
        error["details"] = {"error_code": code}
    body = json.dumps({"type": "error", "error": error, "request_id": _REQUEST_ID}).encode()
    head = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        f"Request-Id: {_REQUEST_ID}",
        "Connection: close",
    ]
    if retry_after is not None:
        head.append(f"Retry-After: {retry_after}")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()


@pytest.fixture
def anthropic_sse_server() -> Iterator[AnthropicSSEServer]:
    """A started server, stopped after the test. Import it into a conftest to use it."""
    with AnthropicSSEServer() as server:
        yield server
