"""A real, scriptable OpenAI Chat Completions streaming server for tests.

It listens on 127.0.0.1 (loopback only) on an ephemeral port, in its own thread with its own
event loop, and speaks the wire format of ``POST /v1/chat/completions`` with ``stream: true``:
``Content-Type: text/event-stream``, chunked transfer encoding, one ``data: {chunk}\\n\\n`` event
per HTTP chunk, ``data: [DONE]\\n\\n`` at the end.

Each request is answered from a ``Script``: the text deltas, whether to send usage, and an
optional fault (an HTTP error status with an OpenAI-style JSON body, a dropped connection, a
malformed event or a stall after K deltas). Every request received is recorded.

    with OpenAISSEServer() as server:
        server.script = Script(deltas=["Hel", "lo"])
        provider = OpenAICompatibleProvider("local", base_url=server.base_url, api_key=None)
        ...
        assert server.requests[0].body["model"] == "m"

The server is bounded: it stops by itself after ``max_lifetime_s``, stalls are capped, request
sizes are capped, and ``stop()`` cancels every open connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

import pytest

__all__ = [
    "OpenAISSEServer",
    "RecordedRequest",
    "Script",
    "openai_sse_server",
]

Fault = Literal["drop", "malformed", "stall", "cut"]

_HOST = "127.0.0.1"
_MAX_REQUEST_BYTES = 1 << 20
_READ_TIMEOUT_S = 10.0
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    529: "Site Overloaded",
}
_DEFAULT_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("Bad request.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    403: ("You are not allowed to use this model.", "invalid_request_error", None),
    404: (
        "The model does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    ),
    429: ("Rate limit reached for requests.", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request.", "server_error", None),
    503: ("The engine is currently overloaded.", "server_error", None),
}


@dataclass
class Script:
    """How the server answers one request.

    ``status`` other than 200 answers with that HTTP status and an OpenAI-style error body
    ``{"error": {"message", "type", "param", "code"}}`` (``error_message`` etc. override the
    defaults; ``echo_auth_in_error`` appends the request's bearer token to the message, as a
    careless server might). Otherwise the response streams ``deltas``; ``fault`` then strikes
    after ``fault_after`` deltas: ``drop`` closes the connection mid-body, ``malformed`` sends
    an unparseable ``data:`` line (then finishes normally), ``stall`` sleeps ``stall_s`` seconds
    before going on (capped by the server's ``max_stall_s``), ``cut`` ends the body cleanly
    there, with no ``finish_reason`` and no ``[DONE]``, as a proxy that cuts long responses
    does (the SDK sees a normal end). ``delay_s`` is slept between two
    deltas, so a response takes a while to stream (a real process can be stopped mid-answer).
    """

    deltas: list[str] = field(default_factory=lambda: ["Hello", ", ", "world", "!"])
    send_usage: bool = True
    prompt_tokens: int = 17
    completion_tokens: int | None = None  # None: one per delta
    finish_reason: str = "stop"
    status: int = 200
    error_message: str | None = None
    error_type: str | None = None
    error_code: str | None = None
    retry_after: str | None = None
    echo_auth_in_error: bool = False
    fault: Fault | None = None
    fault_after: int = 0
    stall_s: float = 30.0
    delay_s: float = 0.0


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any  # the parsed JSON body, or None if there was none or it was not JSON
    raw_body: bytes


class _BadRequest(Exception):
    pass


class OpenAISSEServer:
    """A scripted OpenAI-compatible streaming server on 127.0.0.1 (see the module docstring)."""

    def __init__(self, *, max_lifetime_s: float = 120.0, max_stall_s: float = 60.0) -> None:
        self.script = Script()
        # When set, picks the script from the request's JSON body (after any queued scripts).
        self.script_for: Callable[[Any], Script] | None = None
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
        """The OpenAI-style base URL (``http://127.0.0.1:PORT/v1``)."""
        return f"http://{_HOST}:{self.port}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the requests received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def completed_streams(self) -> int:
        """How many streamed responses were written to the end (``[DONE]`` and final chunk)."""
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

    def start(self) -> OpenAISSEServer:
        if self._thread is not None:
            raise RuntimeError("server already started")
        self._thread = threading.Thread(target=self._run, name="openai-sse-server", daemon=True)
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

    def __enter__(self) -> OpenAISSEServer:
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

        if path.split("?", 1)[0].rstrip("/") != "/v1/chat/completions":
            await _send_json_error(writer, 404, f"Unknown path {path}", "invalid_request_error", None, None)
            return
        if method != "POST":
            await _send_json_error(writer, 405, "Use POST", "invalid_request_error", None, None)
            return
        if not isinstance(body, dict):
            await _send_json_error(
                writer, 400, "Body is not a JSON object", "invalid_request_error", None, None
            )
            return
        if script.status != 200:
            default_msg, default_type, default_code = _DEFAULT_ERRORS.get(
                script.status, ("Request failed.", "server_error" if script.status >= 500 else "error", None)
            )
            message = script.error_message or default_msg
            if script.echo_auth_in_error:
                token = headers.get("authorization", "").removeprefix("Bearer ").strip()
                message = f"{message} You provided: {token}."
            await _send_json_error(
                writer,
                script.status,
                message,
                script.error_type or default_type,
                script.error_code if script.error_code is not None else default_code,
                script.retry_after,
            )
            return
        if body.get("stream") is not True:
            await _send_json_error(
                writer,
                400,
                "This test server only streams (stream must be true)",
                "invalid_request_error",
                None,
                None,
            )
            return
        await self._stream(reader, writer, body, script)

    async def _stream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, body: dict[str, Any], script: Script
    ) -> None:
        model = str(body.get("model", ""))
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        created = int(time.time())
        chunk_id = f"chatcmpl-test{created}"

        def chunk(choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> dict[str, Any]:
            data: dict[str, Any] = {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_test",
                "choices": choices,
            }
            if include_usage:
                data["usage"] = usage  # null on every chunk but the last, as OpenAI does
            return data

        def choice(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}

        writer.write(
            b"HTTP/1.1 200 OK\r\n"
            b"Content-Type: text/event-stream; charset=utf-8\r\n"
            b"Transfer-Encoding: chunked\r\n"
            b"Cache-Control: no-cache\r\n"
            b"X-Request-Id: req_test\r\n"
            b"Connection: close\r\n\r\n"
        )
        await _send_event(writer, chunk([choice({"role": "assistant", "content": "", "refusal": None})]))

        for index, text in enumerate(script.deltas):
            if index == script.fault_after and not await self._fault(reader, writer, script):
                return
            if index and script.delay_s > 0:
                await asyncio.sleep(script.delay_s)
            await _send_event(writer, chunk([choice({"content": text})]))
        if script.fault_after >= len(script.deltas) and not await self._fault(reader, writer, script):
            return

        await _send_event(writer, chunk([choice({}, script.finish_reason)]))
        if include_usage and script.send_usage:
            completion = (
                script.completion_tokens if script.completion_tokens is not None else len(script.deltas)
            )
            usage = {
                "prompt_tokens": script.prompt_tokens,
                "completion_tokens": completion,
                "total_tokens": script.prompt_tokens + completion,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            }
            await _send_event(writer, chunk([], usage))
        await _send_chunk(writer, b"data: [DONE]\n\n")
        # Counted before the body's last bytes go out: a client that has read them all (and a test
        # that then asks) must find the stream counted, not race this coroutine's wake-up.
        with self._lock:
            self._completed_streams += 1
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async def _fault(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, script: Script
    ) -> bool:
        """Inject ``script.fault`` (if any); return whether the response goes on afterwards."""
        if script.fault is None:
            return True
        if script.fault == "drop":
            # Close mid-body: the chunked body never gets its terminating zero-length chunk.
            await writer.drain()
            writer.close()
            return False
        if script.fault == "cut":
            writer.write(b"0\r\n\r\n")  # the chunked body's proper end: nothing looks broken
            await writer.drain()
            return False
        if script.fault == "malformed":
            await _send_chunk(
                writer, b'data: {"id": "chatcmpl-broken", "choices": [{"delta": {"content": "x\n\n'
            )
            return True
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


async def _send_event(writer: asyncio.StreamWriter, data: dict[str, Any]) -> None:
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    await _send_chunk(writer, f"data: {payload}\n\n".encode())


async def _send_json_error(
    writer: asyncio.StreamWriter,
    status: int,
    message: str,
    error_type: str,
    code: str | None,
    retry_after: str | None,
) -> None:
    body = json.dumps(
        {"error": {"message": message, "type": error_type, "param": None, "code": code}}
    ).encode()
    head = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "X-Request-Id: req_test",
        "Connection: close",
    ]
    if retry_after is not None:
        head.append(f"Retry-After: {retry_after}")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()


@pytest.fixture
def openai_sse_server() -> Iterator[OpenAISSEServer]:
    """A started server, stopped after the test. Import it into a conftest to use it."""
    with OpenAISSEServer() as server:
        yield server
