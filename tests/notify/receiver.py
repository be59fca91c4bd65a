"""A webhook receiver for tests: a real HTTP server on 127.0.0.1 in a thread that verifies
every request with the `standardwebhooks` package and records it.

    with Receiver(secrets=[secret]) as receiver:
        receiver.script(Reply(500), Reply(500), Reply(200))  # then 200s
        ... receiver.url, receiver.received ...
"""

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering
    block: threading.Event | None = None  # wait for this before answering


@dataclass
class Received:
    message_id: str
    headers: dict[str, str]
    body: bytes
    verified_with: list[int]  # indexes of the receiver's secrets that verify it
    answered: int

    @property
    def payload(self) -> Any:
        return json.loads(self.body)


class Receiver:
    def __init__(self, secrets: list[str] | None = None, *, path: str = "/hooks") -> None:
        self.secrets = list(secrets or [])
        self.path = path
        self.received: list[Received] = []
        self.arrived = threading.Event()
        self._script: list[Reply] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.path}"

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with these, then 200."""
        with self._lock:
            self._script.extend(replies)

    def _next_reply(self) -> Reply:
        with self._lock:
            return self._script.pop(0) if self._script else Reply(200)

    def ids(self) -> list[str]:
        return [r.message_id for r in self.received]

    def payloads(self) -> list[Any]:
        return [r.payload for r in self.received]

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.received) >= count:
                return True
            time.sleep(0.02)
        return len(self.received) >= count

    def _verify(self, body: bytes, headers: dict[str, str]) -> list[int]:
        good = []
        for index, secret in enumerate(self.secrets):
            try:
                Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
            good.append(index)
        return good

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                reply = receiver._next_reply()
                record = Received(
                    message_id=headers.get("webhook-id", ""),
                    headers=headers,
                    body=body,
                    verified_with=receiver._verify(body, headers),
                    answered=reply.status,
                )
                with receiver._lock:
                    receiver.received.append(record)
                receiver.arrived.set()
                if reply.block is not None:
                    reply.block.wait(60)
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the sender gave up (its timeout)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def __enter__(self) -> "Receiver":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
