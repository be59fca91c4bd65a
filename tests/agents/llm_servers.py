"""Fake LLM providers: real HTTP servers on 127.0.0.1 that speak the OpenAI and Anthropic APIs.

The official SDKs talk to them exactly as they would to the vendors, so the whole path (SDK,
HTTP, SSE parsing, error mapping) is exercised. Replies are scripted in order:

    with FakeOpenAIServer() as server:
        server.enqueue_status(500)          # first request
        server.enqueue_text("hello")        # second request
        ...                                 # later requests: server.default_text

Each request's JSON body is appended to `.requests` and its headers to `.headers`.
"""

import contextlib
import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


@dataclass(frozen=True)
class Reply:
    text: str = ""
    status: int = 200
    delay: float = 0.0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    include_usage: bool = True
    fail_mid_stream: bool = False


def _words(text: str) -> list[str]:
    """Split into deltas that concatenate back to `text` exactly."""
    pieces = text.split(" ")
    return [piece + " " for piece in pieces[:-1]] + [pieces[-1]]


def _prompt_word_count(body: dict[str, Any]) -> int:
    texts = [str(m.get("content", "")) for m in body.get("messages", [])]
    if isinstance(body.get("system"), str):
        texts.append(body["system"])
    return sum(len(text.split()) for text in texts)


class _FakeLLMServer:
    path = ""
    default_text = "default reply"

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- scripting -------------------------------------------------------------------------
    def enqueue_text(
        self,
        text: str,
        *,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        include_usage: bool = True,
        delay: float = 0.0,
    ) -> None:
        """A successful reply (sent after `delay` seconds). Token counts default to
        whitespace-separated word counts."""
        self._enqueue(
            Reply(
                text=text,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                include_usage=include_usage,
                delay=delay,
            )
        )

    def enqueue_status(self, status: int) -> None:
        """An error response with the provider's error body."""
        self._enqueue(Reply(status=status))

    def enqueue_delay(self, seconds: float, text: str = "too late") -> None:
        """A reply sent only after `seconds` (longer than the client's timeout → timeout)."""
        self._enqueue(Reply(text=text, delay=seconds))

    def enqueue_broken_stream(self, text: str) -> None:
        """For a streaming request: `text` as deltas, then an error event instead of the end."""
        self._enqueue(Reply(text=text, fail_mid_stream=True))

    def _enqueue(self, reply: Reply) -> None:
        with self._lock:
            self._replies.append(reply)

    def _next_reply(self, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)
            return self._replies.popleft() if self._replies else Reply(text=self.default_text)

    # --- lifecycle -------------------------------------------------------------------------
    @property
    def origin(self) -> str:
        assert self._server is not None, "the server is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Self:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path != fake.path:
                    self.send_error(404)
                    return
                reply = fake._next_reply(body, {k.lower(): v for k, v in self.headers.items()})
                if reply.delay and fake._stopping.wait(reply.delay):
                    return
                # The client may have timed out and gone away, as the test intended.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    fake._respond(self, body, reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- protocol --------------------------------------------------------------------------
    def _usage(self, body: dict[str, Any], reply: Reply) -> tuple[int, int]:
        prompt = reply.prompt_tokens
        completion = reply.completion_tokens
        return (
            _prompt_word_count(body) if prompt is None else prompt,
            len(reply.text.split()) if completion is None else completion,
        )

    def _respond(self, handler: BaseHTTPRequestHandler, body: dict[str, Any], reply: Reply) -> None:
        raise NotImplementedError

    @staticmethod
    def _send_json(handler: BaseHTTPRequestHandler, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    @staticmethod
    def _start_events(handler: BaseHTTPRequestHandler) -> None:
        # HTTP/1.0 without a length: the body ends when the connection closes, as SSE allows.
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-cache")
        handler.end_headers()

    @staticmethod
    def _send_event(
        handler: BaseHTTPRequestHandler, data: dict[str, Any] | str, event: str | None = None
    ) -> None:
        text = data if isinstance(data, str) else json.dumps(data)
        prefix = f"event: {event}\n" if event else ""
        handler.wfile.write(f"{prefix}data: {text}\n\n".encode())
        handler.wfile.flush()


class FakeOpenAIServer(_FakeLLMServer):
    """POST /v1/chat/completions; point the SDK at `.base_url` (which ends in /v1)."""

    path = "/v1/chat/completions"
    default_text = "default reply from the fake OpenAI server"

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    def _respond(self, handler: BaseHTTPRequestHandler, body: dict[str, Any], reply: Reply) -> None:
        if reply.status != 200:
            self._send_json(handler, reply.status, self._error_body(reply.status))
            return
        model = body.get("model", "unknown")
        prompt_tokens, completion_tokens = self._usage(body, reply)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        if not body.get("stream"):
            payload: dict[str, Any] = {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply.text},
                        "finish_reason": "stop",
                    }
                ],
            }
            if reply.include_usage:
                payload["usage"] = usage
            self._send_json(handler, 200, payload)
            return

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            return {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            }

        self._start_events(handler)
        self._send_event(handler, chunk({"role": "assistant", "content": ""}))
        for word in _words(reply.text):
            self._send_event(handler, chunk({"content": word}))
        if reply.fail_mid_stream:
            self._send_event(handler, {"error": {"message": "overloaded", "type": "server_error"}})
            return
        self._send_event(handler, chunk({}, finish_reason="stop"))
        wants_usage = (body.get("stream_options") or {}).get("include_usage")
        if wants_usage and reply.include_usage:
            final = chunk({})
            final["choices"], final["usage"] = [], usage
            self._send_event(handler, final)
        self._send_event(handler, "[DONE]")

    @staticmethod
    def _error_body(status: int) -> dict[str, Any]:
        kinds = {400: "invalid_request_error", 401: "invalid_api_key", 429: "rate_limit_exceeded"}
        return {
            "error": {
                "message": f"fake error {status}",
                "type": kinds.get(status, "server_error"),
                "param": None,
                "code": None,
            }
        }


class FakeAnthropicServer(_FakeLLMServer):
    """POST /v1/messages; point the SDK at `.base_url` (the origin: the SDK adds /v1)."""

    path = "/v1/messages"
    default_text = "default reply from the fake Anthropic server"

    @property
    def base_url(self) -> str:
        return self.origin

    def _respond(self, handler: BaseHTTPRequestHandler, body: dict[str, Any], reply: Reply) -> None:
        if reply.status != 200:
            self._send_json(handler, reply.status, self._error_body(reply.status))
            return
        model = body.get("model", "unknown")
        input_tokens, output_tokens = self._usage(body, reply)
        message: dict[str, Any] = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": reply.text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        }
        if not body.get("stream"):
            self._send_json(handler, 200, message)
            return
        start = dict(message, content=[], stop_reason=None)
        start["usage"] = {"input_tokens": input_tokens, "output_tokens": 1}
        self._start_events(handler)
        self._send_event(handler, {"type": "message_start", "message": start}, "message_start")
        self._send_event(
            handler,
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
            "content_block_start",
        )
        self._send_event(handler, {"type": "ping"}, "ping")
        for word in _words(reply.text):
            delta = {"type": "content_block_delta", "index": 0}
            delta["delta"] = {"type": "text_delta", "text": word}
            self._send_event(handler, delta, "content_block_delta")
        if reply.fail_mid_stream:
            error = {
                "type": "error",
                "error": {"type": "overloaded_error", "message": "Overloaded"},
            }
            self._send_event(handler, error, "error")
            return
        self._send_event(handler, {"type": "content_block_stop", "index": 0}, "content_block_stop")
        self._send_event(
            handler,
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": output_tokens},
            },
            "message_delta",
        )
        self._send_event(handler, {"type": "message_stop"}, "message_stop")

    @staticmethod
    def _error_body(status: int) -> dict[str, Any]:
        kinds = {
            400: "invalid_request_error",
            401: "authentication_error",
            403: "permission_error",
            429: "rate_limit_error",
            529: "overloaded_error",
        }
        return {
            "type": "error",
            "error": {"type": kinds.get(status, "api_error"), "message": f"fake error {status}"},
        }
