"""Each ws process reports its open sockets to Redis (system.realtime.census), which the
dashboard lists: a real consumer through WebsocketCommunicator raises and lowers the count."""

import asyncio
import json
import os
import socket
import time

import pytest
from channels.testing import WebsocketCommunicator

from system.kernel.redis_client import get_redis
from system.ops.dashboard import WS_PROCESSES_KEY, ws_processes
from system.realtime.routing import websocket_application

pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]

FIELD = f"{socket.gethostname()}:{os.getpid()}"


async def _reported(connections: int, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        raw = get_redis().hget(WS_PROCESSES_KEY, FIELD)
        entry = json.loads(raw) if raw else {}
        if entry.get("connections") == connections or time.monotonic() > deadline:
            return entry
        await asyncio.sleep(0.05)


async def test_open_sockets_are_counted_and_reported_per_process():
    get_redis().hdel(WS_PROCESSES_KEY, FIELD)
    first = WebsocketCommunicator(websocket_application(), "/v1/ws")
    second = WebsocketCommunicator(websocket_application(), "/v1/ws")
    assert (await first.connect())[0] and (await second.connect())[0]

    two = await _reported(2)
    listed = ws_processes()
    await first.disconnect()
    await second.disconnect()
    none = await _reported(0)

    assert two["connections"] == 2 and time.time() - two["updated_at"] < 5
    assert {"process": FIELD, "connections": 2} in [
        {"process": r["process"], "connections": r["connections"]} for r in listed["rows"]
    ]
    assert listed["total"] >= 2
    assert none["connections"] == 0
