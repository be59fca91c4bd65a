"""Helpers of the fault-injection tests (test_faults_*.py): a Redis of the test's own that it
may kill, freeze and restart, steady HTTP traffic that records every answer, and sockets that
record every message event they receive."""

import asyncio
import contextlib
import json
import os
import shutil
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import httpx
import psutil
import pytest
from websockets.asyncio.client import ClientConnection, connect

from system.devserver.embedded_redis import EmbeddedRedis, free_port

WAIT = 60


class RedisServer(EmbeddedRedis):
    """The embedded Redis on a free port, which a test may kill, freeze and restart. With
    `persist`, an append-only file: what a production Redis keeps across a restart, it keeps
    too; without, it comes back empty (CI's Redis, the embedded one, a cache-only
    deployment)."""

    def __init__(self, data_dir: Path, *, persist: bool = True) -> None:
        super().__init__(port=free_port(), data_dir=data_dir, persist=persist)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def freeze(self) -> None:
        """The server stops answering, connections stay open: a network partition."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self, timeout: float = 5.0) -> None:
        if self.process is not None and self.process.poll() is None:
            self.thaw()
        super().stop(timeout)


@dataclass
class Post:
    channel: str
    status: int  # 0: no HTTP answer
    message_id: str | None
    phase: str


@dataclass
class Traffic:
    """Posts one message every `interval` seconds, round-robin over `channels`, recording
    each answer with the phase it was sent in."""

    api_url: str
    key: str
    channels: list[str]
    interval: float = 0.2
    phase: str = "before"
    posts: list[Post] = field(default_factory=list)

    async def run(self, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(base_url=self.api_url, timeout=30) as client:
            n = 0
            while not stop.is_set():
                channel = self.channels[n % len(self.channels)]
                self.posts.append(await self.post(client, channel, f"traffic {n}"))
                n += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.interval)

    async def post(self, client: httpx.AsyncClient, channel: str, content: str) -> Post:
        phase = self.phase
        try:
            response = await client.post(
                f"/api/v1/channels/{channel}/messages",
                json={"sender_id": "ops", "content": content},
                headers={"X-API-KEY": self.key},
            )
        except httpx.TransportError:
            return Post(channel, 0, None, phase)
        message_id = response.json().get("message_id") if response.status_code == 201 else None
        return Post(channel, response.status_code, message_id, phase)

    def failed(self) -> list[Post]:
        return [p for p in self.posts if p.status != 201]


class Listener:
    """One socket subscribed to `message` events of some channels; a task records the id of
    every message event it receives, and how the socket closed if it did."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.received: list[str] = []
        self.event_ids: list[int] = []  # the event id of each message event, in arrival order
        self.hello: dict = {}
        self.closed: str | None = None
        self.task: asyncio.Task | None = None

    @classmethod
    async def open(
        cls, ws_url: str, key: str, channels: list[str], last_event_id: int | None = None
    ) -> "Listener":
        """With `last_event_id`, a reconnection: the first subscription replays what came
        after it (once subscribed, before the live events)."""
        query = {"token": key}
        if last_event_id is not None:
            query["last_event_id"] = str(last_event_id)
        url = f"{ws_url}?{urlencode(query)}"
        ws = await connect(url, proxy=None, open_timeout=WAIT)
        hello = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
        assert hello["event"] == "connection_established", hello
        for channel in channels:
            await ws.send(
                json.dumps(
                    {
                        "command": "subscribe",
                        "event_type": "message",
                        "filter": {"channel_id": channel},
                    }
                )
            )
            while True:
                reply = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
                if reply.get("event") == "subscribed":
                    break
                assert "event_id" in reply or reply.get("event") == "ping", reply
        listener = cls(ws)
        listener.hello = hello
        listener.task = asyncio.create_task(listener._read())
        return listener

    async def _read(self) -> None:
        try:
            async for text in self.ws:
                message = json.loads(text)
                if message.get("event") == "new_message" and "event_id" in message:
                    self.received.append(message["data"]["message"]["message_id"])
                    self.event_ids.append(message["event_id"])
        except Exception as exc:  # noqa: BLE001 - recorded, asserted on by the test
            self.closed = f"{type(exc).__name__}: {exc}"
        else:
            self.closed = f"closed {self.ws.close_code} {self.ws.close_reason}"

    def has(self, ids: set[str]) -> bool:
        return ids <= set(self.received)

    def duplicates(self) -> list[str]:
        return [i for i, n in Counter(self.received).items() if n > 1]

    async def close(self) -> None:
        await self.ws.close()
        if self.task is not None:
            await asyncio.wait_for(self.task, 10)


async def wait_until(predicate, timeout: float, describe) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.25)
    pytest.fail(f"timed out after {timeout}s: {await describe()}")


@contextlib.contextmanager
def keep_log(name: str, log: Path):
    """Copy the stack's log to $FAULTS_LOG_DIR/<name>.log when set (pytest's tmp directories
    rotate away while a failure is being diagnosed)."""
    try:
        yield
    finally:
        target = os.environ.get("FAULTS_LOG_DIR")
        if target and log.exists():
            Path(target).mkdir(parents=True, exist_ok=True)
            shutil.copy(log, Path(target) / f"{name}.log")


def ws_processes(stack) -> list[psutil.Process]:
    """The ws server processes (each accepts on the shared socket, passed as `--fd N`)."""
    children = psutil.Process(stack.process.pid).children(recursive=True)
    return [p for p in children if "--fd" in p.cmdline()]


def serving_process(stack, ws: ClientConnection) -> int:
    """The pid of the ws process that accepted this client's connection."""
    client_port = ws.local_address[1]
    for process in ws_processes(stack):
        for conn in process.net_connections(kind="tcp"):
            if conn.raddr and conn.raddr.port == client_port:
                return process.pid
    raise AssertionError(f"no ws process holds the connection from port {client_port}")
