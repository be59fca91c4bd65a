"""How many sockets this ws process holds, reported to Redis for the admin dashboard.

A counter per event loop (daphne runs one per process), raised in `connect` and lowered in
`disconnect`, and a task in the same loop that writes it to the hash WS_PROCESSES_KEY
(system.kernel.sockets): every WS_REPORT_SECONDS, and after a change at most once per
MIN_INTERVAL_SECONDS. The task runs while the process holds sockets and ends after reporting 0
(a test's loop ends cleanly); the dashboard (system.ops.dashboard) treats an entry older than
three periods as gone and prunes it.
The write runs on a thread, so a Redis outage never holds up the loop; it is then skipped.
"""

import asyncio
import json
import logging
import os
import socket
import time
import weakref

import redis

from system.kernel.redis_client import get_redis
from system.kernel.sockets import WS_PROCESSES_KEY, WS_REPORT_SECONDS

logger = logging.getLogger(__name__)

MIN_INTERVAL_SECONDS = 1.0


def _report(field: str, connections: int) -> None:
    value = json.dumps({"connections": connections, "updated_at": time.time()})
    try:
        get_redis().hset(WS_PROCESSES_KEY, field, value)
    except redis.RedisError as exc:
        logger.debug("ws connection count not reported (%s)", type(exc).__name__)


class SocketCensus:
    def __init__(self) -> None:
        self.open = 0
        self.field = f"{socket.gethostname()}:{os.getpid()}"
        self.changed = asyncio.Event()
        self.task: asyncio.Task | None = None

    def opened(self) -> None:
        self.open += 1
        self.changed.set()
        if self.task is None:
            self.task = asyncio.create_task(self._run(), name="realtime-census")

    def closed(self) -> None:
        self.open = max(0, self.open - 1)
        self.changed.set()

    async def _run(self) -> None:
        try:
            while True:
                self.changed.clear()
                reported = self.open
                await asyncio.to_thread(_report, self.field, reported)
                if reported == 0 and self.open == 0:
                    return
                try:
                    await asyncio.wait_for(self.changed.wait(), WS_REPORT_SECONDS)
                except TimeoutError:
                    continue
                if self.open:
                    await asyncio.sleep(MIN_INTERVAL_SECONDS)  # changes coalesce
        finally:
            if self.task is asyncio.current_task():
                self.task = None


_censuses: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SocketCensus]" = (
    weakref.WeakKeyDictionary()
)


def census() -> SocketCensus:
    """This event loop's census."""
    loop = asyncio.get_running_loop()
    found = _censuses.get(loop)
    if found is None:
        found = _censuses[loop] = SocketCensus()
    return found
