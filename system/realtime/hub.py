"""Live events for one ws process: one Redis subscription, fanned out to its own connections.

`system.events.publish_many` sends committed event ids with their groups on one pub/sub
channel. Each event loop (daphne runs one per process; tests one per test) has one `Hub`: a
task holding the only subscription, and a registry group -> members (each connection's
`Delivery`) that replaces channel-layer groups for events. Per message the hub brings the
shared log window up to the newest id (one query for the whole process), then wakes each member
concerned once, with the highest id that concerns it. A woken member delivers from the window
itself, in id order from its cursor (see delivery.py), so a wake-up the hub never got (Redis
away, a message published while the subscription was being re-made) costs latency, never an
event: the next wake-up or the connection's periodic sync delivers it. After re-subscribing,
the hub wakes every member up to the log head at once.

Wake-ups run one after the other and must not wait on anything slow: a member that can
deliver from memory does so there (its sends through ASGI do not wait under daphne, which
buffers), one that cannot (busy with a command, behind the window) hands the wake-up to a task
of its own.

A member is only ever woken up to where the window reaches, the log's watermark
(system.eventlog.watermark): a published id above it (its writer committed before a writer of a
smaller id, still in flight) waits in `waiting`. The hub's retry task reads the watermark again
every RETRY_WATERMARK_SECONDS while anything waits, and wakes each member as far as it got: a
writer in flight that rolls back publishes nothing, and nothing else would come to say that the
ids above it are now final.
"""

import asyncio
import logging
import os
import time
import weakref
from typing import Protocol

import redis.asyncio as aioredis
from django.conf import settings

from system.eventlog import events
from system.realtime.log import log_window

logger = logging.getLogger(__name__)

# Backoff between attempts to (re)subscribe while Redis is away.
RETRY_SECONDS = (0.1, 0.5, 1.0, 2.0, 5.0)
# How long get_message waits before looking at the connection's health again.
POLL_SECONDS = 5.0
# Published ids above the watermark: how often to read it again (after STUCK_SLOW_SECONDS
# without progress, SLOW_SECONDS), when to log that it is stuck, and when to give up (the
# connections' periodic sync still delivers).
RETRY_WATERMARK_SECONDS = 0.025
STUCK_SLOW_SECONDS = 2.0
SLOW_SECONDS = 0.5
STUCK_WARN_SECONDS = 5.0
STUCK_GIVE_UP_SECONDS = 300.0


class Member(Protocol):
    """A connection as the hub sees it (system.realtime.delivery.Delivery)."""

    async def live(self, upto: int) -> None:
        """Events up to `upto` (at least) are committed and in the window: deliver them.
        Must not wait on anything slow (a query, a lock): defer instead."""


class Hub:
    def __init__(self) -> None:
        self.members: dict[str, set[Member]] = {}
        self.groups_of: dict[Member, set[str]] = {}
        self.ready = asyncio.Event()
        self.task: asyncio.Task | None = None
        self.received = 0  # pub/sub messages handled, for tests and diagnostics
        # Wake-ups above the window's end (the watermark), highest id per member, and the task
        # that reads the watermark again until they are reached.
        self.waiting: dict[Member, int] = {}
        self.retry: asyncio.Task | None = None
        self._waking = asyncio.Lock()

    # --- membership --------------------------------------------------------------------------

    def join(self, member: Member, group: str) -> None:
        self.members.setdefault(group, set()).add(member)
        self.groups_of.setdefault(member, set()).add(group)
        if self.task is None:
            self.task = asyncio.create_task(self._run(), name="realtime-hub")

    def leave(self, member: Member, group: str) -> None:
        members = self.members.get(group)
        if members is not None:
            members.discard(member)
            if not members:
                del self.members[group]
        groups = self.groups_of.get(member)
        if groups is not None:
            groups.discard(group)
            if not groups:
                del self.groups_of[member]
                self.waiting.pop(member, None)
        self._stop_if_unused()

    def leave_all(self, member: Member) -> None:
        for group in list(self.groups_of.get(member, ())):
            self.leave(member, group)

    def _stop_if_unused(self) -> None:
        if not self.groups_of and self.task is not None:
            # Nobody listens: let go of the subscription (a test's loop ends cleanly; daphne
            # re-subscribes with the next subscription).
            self.task.cancel()
            self.task = None
            self.ready.clear()
            if self.retry is not None:
                self.retry.cancel()
                self.retry = None
            self.waiting.clear()

    async def wait_ready(self, timeout: float) -> bool:
        """Whether the subscription is live, waiting up to `timeout` seconds: every event
        published after this returns True reaches the members."""
        if self.ready.is_set():
            return True
        try:
            await asyncio.wait_for(self.ready.wait(), timeout)
        except TimeoutError:
            return False
        return True

    # --- the subscription --------------------------------------------------------------------

    async def _run(self) -> None:
        channel = events.events_channel()
        attempt = 0
        subscribed_before = False
        while True:
            client = aioredis.Redis.from_url(
                settings.REDIS_URL,
                socket_connect_timeout=2,
                socket_keepalive=True,
                health_check_interval=30,
                client_name=client_name(),
            )
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(channel)
                while True:
                    message = await pubsub.get_message(timeout=POLL_SECONDS)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        # First subscription, or redis-py re-made it after a reconnect.
                        attempt = 0
                        self.ready.set()
                        if subscribed_before:
                            await self._wake_everyone()
                        subscribed_before = True
                    elif message["type"] == "message":
                        self.received += 1
                        await self._dispatch(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis away: connections sync from the log
                self.ready.clear()
                delay = RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)]
                attempt += 1
                logger.warning(
                    "live events subscription lost (%s: %s); retrying in %ss",
                    type(exc).__name__,
                    exc,
                    delay,
                )
                subscribed_before = True  # whatever was published meanwhile was missed
                await asyncio.sleep(delay)
            finally:
                await _close_quietly(pubsub, client)

    async def _dispatch(self, raw: bytes | str) -> None:
        items = events.decode(raw)
        wakes: dict[Member, int] = {}
        for event_id, groups in items:
            for group in groups:
                members = self.members.get(group)
                if members:
                    for member in members:
                        if wakes.get(member, 0) < event_id:
                            wakes[member] = event_id
        if not wakes:
            return
        for member, upto in wakes.items():
            if self.waiting.get(member, 0) < upto:
                self.waiting[member] = upto
        await self._wake_waiting()
        if self.waiting and self.retry is None:
            self.retry = asyncio.create_task(self._retry(), name="realtime-hub-watermark")

    async def _wake_waiting(self) -> int | None:
        """Bring the window towards the highest id waited for (one read of the new entries for
        the whole process, before anyone looks), then wake every waiting member as far as the
        window reaches; those it does not reach yet keep waiting. Returns the window's end."""
        async with self._waking:
            if not self.waiting:
                return None
            window = log_window(settings.WS_LOG_WINDOW)
            try:
                await window.cover(max(self.waiting.values()))
            except Exception:  # the database is away: the retry task tries again
                logger.exception("reading the event log for live events failed")
            end = window.end
            if end is None:
                return None
            wakes = {}
            for member, upto in list(self.waiting.items()):
                wakes[member] = min(upto, end)
                if upto <= end:
                    del self.waiting[member]
            await self._wake(wakes)
            return end

    async def _retry(self) -> None:
        """While wake-ups wait above the watermark, read it again and wake as far as it got."""
        try:
            progress_at = time.monotonic()
            last_end = None
            warned = False
            while self.waiting:
                stuck = time.monotonic() - progress_at
                slow = stuck > STUCK_SLOW_SECONDS
                await asyncio.sleep(SLOW_SECONDS if slow else RETRY_WATERMARK_SECONDS)
                end = await self._wake_waiting()
                if end != last_end:
                    progress_at, last_end, warned = time.monotonic(), end, False
                    continue
                if stuck > STUCK_WARN_SECONDS and not warned:
                    warned = True
                    logger.warning(
                        "live events above id %s wait for a writer in flight for %.0fs",
                        end,
                        stuck,
                    )
                if stuck > STUCK_GIVE_UP_SECONDS:
                    logger.warning("live events above id %s left to the periodic sync", end)
                    self.waiting.clear()
        finally:
            if self.retry is asyncio.current_task():
                self.retry = None

    async def _wake_everyone(self) -> None:
        window = log_window(settings.WS_LOG_WINDOW)
        try:
            await window.cover(None)
        except Exception:
            logger.exception("reading the event log after re-subscribing failed")
            return
        if window.end is not None:
            await self._wake(dict.fromkeys(self.groups_of, window.end))

    async def _wake(self, wakes: dict[Member, int]) -> None:
        for member, upto in wakes.items():
            try:
                await member.live(upto)
            except Exception:  # one connection's failure is not the others'
                logger.exception("live delivery to %r failed", member)


async def _close_quietly(pubsub: aioredis.client.PubSub, client: aioredis.Redis) -> None:
    try:
        await pubsub.aclose()
        await client.aclose()
    except Exception:  # noqa: BLE001, S110 - closing a connection that is already gone
        pass


def client_name() -> str:
    """The hub's Redis connection, as CLIENT LIST shows it."""
    return f"371os-ws-hub-{os.getpid()}"


_hubs: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub]" = weakref.WeakKeyDictionary()


def hub() -> Hub:
    """This event loop's hub."""
    loop = asyncio.get_running_loop()
    found = _hubs.get(loop)
    if found is None:
        found = _hubs[loop] = Hub()
    return found
