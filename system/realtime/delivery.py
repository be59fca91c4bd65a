"""One connection's delivery: in-order, gap-free, duplicate-free events from the log.

A `Delivery` keeps `cursor`: every event it may see with an id up to the cursor has been sent
(or was not wanted). Live wake-ups from the process's hub (system.realtime.hub) only say "id N
exists"; on each, it sends, from the per-process log window, every wanted entry after the
cursor up to N (and beyond, as far as the window reaches) in id order, and moves the cursor
there. So a wake-up that never came (Redis away, the subscription being re-made) goes out with
the next one, or with the periodic `sync` when none comes. Nothing at or below the cursor is
sent again.

Subscriptions start at the log head when they are made. A `resume` before the first subscribe
leaves the cursor waiting at its id until that subscribe, which then replays from it. `resume`
with subscriptions replays after its id for all of them; the last 256 ids sent are not sent
again, so events that went out live between subscribing and resuming are not duplicated.

No sockets here: a Delivery writes each event's JSON text through the `send` it is given, so
tests drive it directly. Everything that moves the cursor runs under `turn()`, one at a time.
"""

import asyncio
import contextlib
import functools
import logging
import operator
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Container

from django.conf import settings
from django.db.models import Q

from system.kernel.exceptions import NotFound
from system.realtime.access import Access
from system.realtime.db import db_call
from system.realtime.hub import Hub
from system.realtime.log import (
    LoggedEvent,
    LogWindow,
    log_entries,
    log_head,
    resync_needed,
)
from system.realtime.subscriptions import Subscription

logger = logging.getLogger(__name__)

# How many recently sent ids a connection remembers, so that a `resume` that rewinds does not
# send them twice (enough for the events that arrive between subscribing and resuming).
SENT_MEMORY = 256
# How long a subscribe waits for the process's live subscription to Redis before going on
# without it (the periodic sync then delivers, later).
HUB_READY_SECONDS = 2.0
# Events sent in a row before the event loop gets a turn to write them out.
YIELD_EVERY = 32
# _scopes() not computed since the subscriptions or the access changed.
_STALE = object()


def replay_too_long(last_event_id: int, newest: int | None) -> bool:
    """Whether a replay after `last_event_id` could send more than WS_REPLAY_MAX_EVENTS
    events: told by ids, not counted, so that deciding costs no query."""
    return (newest or 0) - last_event_id > settings.WS_REPLAY_MAX_EVENTS


class SubscriptionNotFound(NotFound):
    code = "subscription_not_found"
    message = "No subscription with this id on this connection."


class Delivery:
    """The events one connection is owed, and the bookkeeping to send each once, in order.

    `send(text)` writes one event's JSON; `access` decides what may be seen (replace it with
    `regrant`); `window` is the process's log window; `hub` wakes the delivery for the groups
    its subscriptions need; `cursor` is where it starts (the log head, normally)."""

    def __init__(
        self,
        *,
        send: Callable[[str], Awaitable[None]],
        access: Access,
        window: LogWindow,
        hub: Hub,
        cursor: int,
        name: str = "",
    ) -> None:
        self.send = send
        self.access = access
        self.window = window
        self.hub = hub
        self.cursor = cursor
        self.name = name  # for logs: the connection's id
        self.subscriptions: dict[str, Subscription] = {}
        self.joined: set[str] = set()
        self.resume_pending = False
        self.closed = False
        # The highest id a wake-up announced that could not be delivered at once, and the
        # task delivering it.
        self.pending = 0
        self.catch_up: asyncio.Task | None = None
        self.sent_ids: deque[int] = deque(maxlen=SENT_MEMORY)
        # The highest id sent: above the cursor only after a `resume` rewound it, the only
        # time the recently sent ids must be looked at (_already_sent).
        self.sent_max = 0
        self._scope_cache: object = _STALE
        self._lock = asyncio.Lock()
        self._queued = 0  # coroutines inside `turn()` waiting for the lock
        self._unyielded = 0  # events sent since the last turn of the event loop

    # --- taking turns ----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Exclusive use of the cursor and the subscriptions."""
        self._queued += 1
        try:
            await self._lock.acquire()
        finally:
            self._queued -= 1
        try:
            yield
        finally:
            self._lock.release()

    @property
    def busy(self) -> bool:
        """Whether `turn()` would wait now: it is held, or promised to someone queued for it
        (a lock just released still goes to its first waiter)."""
        return self._lock.locked() or self._queued > 0

    # --- what the connection asks for ------------------------------------------------------

    async def subscribe(
        self, subscription: Subscription, *, confirm: Callable[[], Awaitable[None]]
    ) -> None:
        """Add `subscription`, starting at the log head. `confirm` runs once it is in place:
        after the other subscriptions caught up to the head, before a pending resume's
        replay."""
        async with self.turn():
            # Join before reading the head: every event after the head is then heard live.
            await self._join(subscription.group(self.access.principal))
            head = self.window.head(await db_call(log_head)())
            self.window.start_at(head)
            replay, self.resume_pending = self.resume_pending, False
            if not replay:
                # The other subscriptions first catch up to the head, where this one starts.
                await self._advance(head)
            self._set_subscription(subscription)
            await confirm()
            if replay:
                await self._advance(head)

    async def unsubscribe(self, subscription_id: str) -> None:
        """Drop a subscription; raises SubscriptionNotFound when there is none with this id."""
        async with self.turn():
            if self.subscriptions.pop(subscription_id, None) is None:
                raise SubscriptionNotFound(details={"subscription_id": subscription_id})
            self._scope_cache = _STALE
            await self._regroup()

    async def resume(
        self, last_event_id: int, *, oldest: int | None, newest: int | None
    ) -> int | None:
        """Replay what came after `last_event_id` (`oldest` and `newest` bound the log, read
        before). Returns how many events went out; None when they may have been pruned, or
        when more than WS_REPLAY_MAX_EVENTS ids lie after it, so that the client must reload
        instead (the cursor is then at `newest`)."""
        async with self.turn():
            if replay_too_long(last_event_id, newest) or resync_needed(
                last_event_id=last_event_id, oldest=oldest, newest=newest
            ):
                self.resume_pending = False
                self.cursor = max(self.cursor, newest or 0)
                return None
            self.cursor = last_event_id
            if not self.subscriptions:
                self.resume_pending = True  # replayed by the first subscribe
                return 0
            return await self._advance(newest or 0)

    async def regrant(self, access: Access) -> None:
        """The principal's credentials were checked again: roles may have changed, and with
        them the groups and scopes of the subscriptions."""
        async with self.turn():
            self.access = access
            self._scope_cache = _STALE
            await self._regroup()

    async def sync(self, *, max_age: float) -> None:
        """Deliver whatever is committed now: what the live path dropped when nothing came
        after it. The window is read again unless it was less than `max_age` seconds ago."""
        if self.subscriptions and not self.resume_pending:
            async with self.turn():
                await self._advance(None, max_age=max_age)

    def close(self) -> None:
        """Stop delivering: leave the hub, stop the catch-up task."""
        self.closed = True
        if self.catch_up is not None and self.catch_up is not asyncio.current_task():
            self.catch_up.cancel()
        self.hub.leave_all(self)
        self.joined.clear()

    # --- live wake-ups ---------------------------------------------------------------------

    async def live(self, upto: int) -> None:
        """The hub's wake-up: entries up to `upto` are committed (and, normally, in the window).
        Runs in the hub's task, one delivery after the other: deliver from memory now, or,
        when that would wait (a command holds the turn, the cursor is behind the window, the
        window does not reach `upto`), leave it to this delivery's catch-up task."""
        if self.closed or self.resume_pending or upto <= self.cursor:
            return
        window = self.window
        if (
            self.busy
            or self.catch_up is not None
            or not window.covers(upto)
            or window.start is None
            or self.cursor < window.start
        ):
            self._defer(upto)
            return
        async with self.turn():  # free: taken without waiting
            # Whatever else the window already holds is committed too: send it now.
            await self._advance(upto, exact=False)

    def _defer(self, upto: int) -> None:
        self.pending = max(self.pending, upto)
        if self.catch_up is None and not self.closed:
            self.catch_up = asyncio.create_task(self._catch_up())

    async def _catch_up(self) -> None:
        try:
            while not self.closed:
                upto, self.pending = self.pending, 0
                if upto <= self.cursor:
                    break
                async with self.turn():
                    if not self.resume_pending and upto > self.cursor:
                        # Up to what the window holds: `upto` is a hint, and may be beyond
                        # what this database ever had.
                        await self._advance(upto, exact=False)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The database is away: the periodic sync tries again.
            logger.exception("ws %s live delivery failed", self.name)
        finally:
            self.catch_up = None

    # --- sending ---------------------------------------------------------------------------

    async def _advance(self, upto: int | None, *, exact: bool = True, max_age: float = 0.0) -> int:
        """Send every wanted entry in (cursor, upto] in order (upto None, or `exact` off: up
        to whatever the window holds once it reaches upto) and move the cursor there. Returns
        how many were sent. Caller holds the turn."""
        if not self.subscriptions:
            if upto is not None:
                self.cursor = max(self.cursor, upto)
            return 0
        window = self.window
        if upto is None or not window.covers(upto):
            await window.cover(upto, max_age=max_age)
        assert window.start is not None and window.end is not None
        limit = window.end if upto is None or not exact else min(upto, window.end)
        sent = 0
        while self.cursor < min(window.start, limit):
            # Further behind than the window reaches: this delivery's own query.
            sent += await self._replay(until=min(window.start, limit))
        already_sent = self._already_sent()
        for entry in window.after(self.cursor, self._scopes()):
            if entry.event_id > limit:
                break
            if await self._wanted(entry, already_sent):
                await self._send(entry)
                sent += 1
            self.cursor = entry.event_id
        self.cursor = max(self.cursor, limit)
        return sent

    async def _replay(self, *, until: int) -> int:
        batch_size = settings.WS_REPLAY_BATCH
        where = self._where()
        already_sent = self._already_sent()
        sent = 0
        while self.cursor < until:
            batch = await db_call(log_entries)(
                after=self.cursor, upto=until, where=where, limit=batch_size
            )
            for entry in batch:
                if await self._wanted(entry, already_sent):
                    await self._send(entry)
                    sent += 1
                self.cursor = entry.event_id
            if len(batch) < batch_size:
                self.cursor = until
        return sent

    async def _wanted(self, entry: LoggedEvent, already_sent: Container[int]) -> bool:
        """Whether to send `entry`: not sent yet, matched by a subscription, and visible to
        the principal (from memory when it can tell, the live path's usual case)."""
        if entry.event_id in already_sent or not any(
            s.matches(entry) for s in self.subscriptions.values()
        ):
            return False
        visible = self.access.visible_now(entry)
        return await self.access.visible(entry) if visible is None else visible

    async def _send(self, entry: LoggedEvent) -> None:
        self.sent_ids.append(entry.event_id)
        if entry.event_id > self.sent_max:
            self.sent_max = entry.event_id
        # The entry's JSON is made once for every connection of the process.
        await self.send(entry.text())
        self._unyielded += 1
        if self._unyielded >= YIELD_EVERY:
            # Let the server write what was queued: a replay sends without waiting on
            # anything, and a send buffer filled faster than it can drain would count a
            # reading client as one that stopped (WS_SEND_BUFFER_BYTES).
            self._unyielded = 0
            await asyncio.sleep(0)

    def _already_sent(self) -> Container[int]:
        """Ids after the cursor that were sent already: only after a rewinding `resume`
        (ids go out in order otherwise), the last SENT_MEMORY ones."""
        if self.sent_max > self.cursor:
            return set(self.sent_ids)
        return ()

    # --- subscriptions bookkeeping ---------------------------------------------------------

    def _set_subscription(self, subscription: Subscription) -> None:
        self.subscriptions[subscription.subscription_id] = subscription
        self._scope_cache = _STALE

    def _scopes(self) -> set[tuple[str, str | int]] | None:
        """The window index keys of every subscription (None: look at every entry); kept
        until the subscriptions or the access change."""
        if self._scope_cache is not _STALE:
            return self._scope_cache  # type: ignore[return-value]
        scopes: set[tuple[str, str | int]] | None = set()
        for subscription in self.subscriptions.values():
            scope = subscription.scope(self.access.principal)
            if scope is None:
                scopes = None
                break
            scopes.add(scope)
        self._scope_cache = scopes
        return scopes

    def _where(self) -> Q:
        wheres = [subscription.where() for subscription in self.subscriptions.values()]
        # An empty Q (a bare `*`) matches everything, but `Q(...) | Q()` would drop it.
        where = Q() if not all(wheres) else functools.reduce(operator.or_, wheres)
        access_filter = self.access.log_filter()
        return where if access_filter is None else where & access_filter

    # --- hub membership --------------------------------------------------------------------

    async def _join(self, group: str) -> None:
        """Hear this group's events live, once the process's subscription is up."""
        if group not in self.joined:
            self.hub.join(self, group)
            self.joined.add(group)
        if not await self.hub.wait_ready(HUB_READY_SECONDS):
            logger.warning(
                "ws %s: live events unavailable; delivering with the periodic sync", self.name
            )

    async def _regroup(self) -> None:
        """Join the groups the current subscriptions need and leave the others."""
        needed = {s.group(self.access.principal) for s in self.subscriptions.values()}
        for group in self.joined - needed:
            self.hub.leave(self, group)
        self.joined &= needed
        for group in needed - self.joined:
            await self._join(group)

    def __repr__(self) -> str:
        return f"<Delivery {self.name} at {self.cursor}>"
