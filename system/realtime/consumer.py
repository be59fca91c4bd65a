"""The `/v1/ws` consumer: authentication, commands, and in-order, gap-free delivery.

A connection keeps `cursor`: every event it may see with an id up to the cursor has been sent
(or was not wanted). Live wake-ups from the process's hub (system.realtime.hub: one Redis
subscription per process, fanned out to the connections that joined the event's groups) only
say "id N exists"; on each, the connection sends, from the per-process log window, every wanted
entry after the cursor up to N (and beyond, as far as the window reaches) in id order, and
moves the cursor there. So a wake-up that never came (Redis away, the subscription being
re-made) goes out with the next one, or with the periodic sync (WS_SYNC_SECONDS) when none
comes. Nothing at or below the cursor is sent again.

Subscriptions start at the log head when they are made. The cursor of a connection opened
with `?last_event_id=N` (or sent `resume` before subscribing) waits at N until the first
subscribe, which then replays from N. `resume` on a subscribed connection replays after N for
all current subscriptions; the last 256 ids it sent are not sent again, so events that went
out live between subscribing and resuming are not duplicated (they precede the replay).
"""

import asyncio
import functools
import json
import logging
import operator
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Container
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Q
from django.utils import timezone

from system.kernel.exceptions import DomainError, NotFound
from system.realtime.access import Access, grants_for
from system.realtime.auth import (
    AuthenticationError,
    credentials_from_scope,
    principal_authenticate,
    principal_check,
    query_param,
)
from system.realtime.commands import message_send
from system.realtime.hub import Hub, hub
from system.realtime.log import LoggedEvent, log_bounds, log_entries, log_window, resync_needed
from system.realtime.subscriptions import (
    InvalidCommand,
    Subscription,
    subscription_authorize,
    subscription_parse,
)
from system.realtime.wire import direct_writer

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_POLICY_VIOLATION = 1008
CLOSE_TOO_BIG = 1009
# How many recently sent ids a connection remembers, so that a `resume` that rewinds does not
# send them twice (enough for the events that arrive between subscribing and resuming).
_SENT_MEMORY = 256
# A client refused more than WS_COMMAND_OVERFLOW_CLOSE commands within this many seconds is
# closed: it is not slowing down.
_REFUSAL_WINDOW = 10.0
# How long a subscribe waits for the process's live subscription to Redis before going on
# without it (the periodic sync then delivers, later).
_HUB_READY_SECONDS = 2.0
# _scopes() not computed since the subscriptions or the principal changed.
_STALE = object()


class SubscriptionNotFound(NotFound):
    code = "subscription_not_found"
    message = "No subscription with this id on this connection."


class TokenBucket:
    def __init__(self, *, rate: float, burst: int) -> None:
        self.rate = rate
        self.capacity = float(burst)
        self.tokens = float(burst)
        self.updated = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


def _now() -> str:
    return timezone.now().isoformat()


def _free(lock: asyncio.Lock) -> bool:
    """Whether acquiring `lock` now would not wait (not held, and nobody queued for it)."""
    return not lock.locked() and not getattr(lock, "_waiters", None)


class EventStreamConsumer(AsyncWebsocketConsumer):
    # Live events come from the hub, not from channel-layer groups; nothing else is sent to a
    # connection through the channel layer, so a connection has no channel of its own.
    channel_layer_alias = None

    async def connect(self) -> None:
        self.connection_id = str(uuid.uuid4())
        self.access: Access | None = None
        self.subscriptions: dict[str, Subscription] = {}
        self.hub: Hub = hub()
        self.window = log_window(settings.WS_LOG_WINDOW)  # this event loop's, shared
        self.joined: set[str] = set()
        self.cursor = 0
        self.resume_pending = False
        self.lock = asyncio.Lock()
        # The highest id a wake-up announced that the connection could not deliver at once,
        # and the task delivering it.
        self.pending = 0
        self.catch_up: asyncio.Task | None = None
        self.scope_cache: Any = _STALE
        self.plan_cache: Any = _STALE
        self.tasks: list[asyncio.Task] = []
        self.closing = False
        self.bucket = TokenBucket(rate=settings.WS_COMMAND_RATE, burst=settings.WS_COMMAND_BURST)
        self.refused_in_a_row = 0  # for how often to say so
        self.refusals: deque[float] = deque()  # when commands were refused, for closing
        self.subscription_count = 0
        self.sent_ids: deque[int] = deque(maxlen=_SENT_MEMORY)
        # The highest id sent: above the cursor only after a `resume` rewound it, the only
        # time the recently sent ids must be looked at (_already_sent).
        self.sent_max = 0
        # Under daphne, events' frames go straight to the socket (realtime.wire).
        self.write_frame = direct_writer(self.base_send)
        # Accept first: only an open socket can be closed with 4401 and a reason.
        await self.accept()
        token = credentials_from_scope(self.scope)
        if token is None:
            self._start(self._auth_deadline())
            return
        await self._authenticate(token)

    async def disconnect(self, code: int) -> None:
        self.closing = True
        self._stop_tasks()
        self._leave_all()
        if self.access is not None:
            logger.info(
                "ws %s closed (%s) for %s", self.connection_id, code, self.access.principal.label
            )

    # --- connection lifecycle ------------------------------------------------------------

    def _start(self, coroutine: Awaitable[None]) -> None:
        self.tasks.append(asyncio.create_task(coroutine))

    def _stop_tasks(self) -> None:
        current = asyncio.current_task()
        for task in (*self.tasks, self.catch_up):
            if task is not None and task is not current:
                task.cancel()

    async def _close(self, code: int, reason: str) -> None:
        if self.closing:
            return
        self.closing = True
        self._stop_tasks()
        self._leave_all()
        # A close reason is at most 123 bytes.
        await self.close(code=code, reason=reason.encode()[:123].decode(errors="ignore"))

    async def _auth_deadline(self) -> None:
        await asyncio.sleep(settings.WS_AUTH_TIMEOUT_SECONDS)
        if self.access is None:
            await self._close(CLOSE_UNAUTHENTICATED, "Authentication timed out.")

    async def _authenticate(self, token: Any) -> None:
        try:
            principal = await database_sync_to_async(principal_authenticate)(token=token)
        except AuthenticationError as exc:
            client = self.scope.get("client") or ("-",)
            logger.info("ws %s refused for %s: %s", self.connection_id, client[0], exc)
            await self._close(CLOSE_UNAUTHENTICATED, str(exc))
            return
        self._stop_tasks()  # the auth deadline
        self.tasks = []
        grants = await database_sync_to_async(grants_for)(principal)
        self.access = Access(principal, grants, ttl=settings.WS_AUTH_RECHECK_SECONDS)
        oldest, newest = await database_sync_to_async(log_bounds)()
        self.cursor = newest or 0
        logger.info("ws %s opened for %s", self.connection_id, principal.label)
        await self._send_json(
            {
                "event": "connection_established",
                "data": {
                    "connection_id": self.connection_id,
                    "principal": principal.describe(),
                    "server_time": _now(),
                    "last_event_id": self.cursor,
                },
            }
        )
        raw = query_param(self.scope, "last_event_id")
        if raw is not None:
            try:
                await self._resume_at(_event_id(raw), oldest=oldest, newest=newest)
            except InvalidCommand as exc:
                await self._error(exc, command="connect")
        self._start(self._housekeeping())

    async def _housekeeping(self) -> None:
        """Server pings, credential re-checks, and the sync that delivers what the live path
        dropped when nothing arrived after it."""
        now = time.monotonic()
        due = {
            "ping": now + settings.WS_PING_SECONDS,
            "check": now + settings.WS_AUTH_RECHECK_SECONDS,
            "sync": now + settings.WS_SYNC_SECONDS,
        }
        while not self.closing:
            await asyncio.sleep(max(0.01, min(due.values()) - time.monotonic()))
            now = time.monotonic()
            try:
                if now >= due["check"]:
                    due["check"] = now + settings.WS_AUTH_RECHECK_SECONDS
                    await self._recheck()
                if now >= due["sync"] and not self.closing:
                    due["sync"] = now + settings.WS_SYNC_SECONDS
                    if self.subscriptions and not self.resume_pending:
                        async with self.lock:
                            await self._advance(None, max_age=settings.WS_SYNC_SECONDS / 2)
                if now >= due["ping"] and not self.closing:
                    due["ping"] = now + settings.WS_PING_SECONDS
                    await self._send_json({"event": "ping", "data": {"server_time": _now()}})
            except asyncio.CancelledError:
                raise
            except Exception:
                # The database or Redis is away: try again at the next due time.
                logger.exception("ws %s housekeeping failed", self.connection_id)

    async def _recheck(self) -> None:
        assert self.access is not None
        try:
            principal = await database_sync_to_async(principal_check)(
                principal=self.access.principal
            )
        except AuthenticationError as exc:
            await self._close(CLOSE_UNAUTHENTICATED, str(exc))
            return
        grants = await database_sync_to_async(grants_for)(principal)
        access = Access(principal, grants, ttl=settings.WS_AUTH_RECHECK_SECONDS)
        access.directory = self.access.directory
        async with self.lock:
            # Roles may have changed, and with them the groups and scopes of subscriptions.
            self.access = access
            self.scope_cache = self.plan_cache = _STALE
            await self._regroup()

    # --- incoming frames -----------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None):
        if self.closing:
            return
        size = len(text_data.encode()) if text_data is not None else len(bytes_data or b"")
        if size > settings.WS_MAX_FRAME_BYTES:
            await self._close(CLOSE_TOO_BIG, "Frame too big.")
            return
        if not self.bucket.take():
            self.refused_in_a_row += 1
            now = time.monotonic()
            self.refusals.append(now)
            while now - self.refusals[0] > _REFUSAL_WINDOW:
                self.refusals.popleft()
            if len(self.refusals) > settings.WS_COMMAND_OVERFLOW_CLOSE:
                await self._close(CLOSE_POLICY_VIOLATION, "Command rate limit exceeded.")
            elif self.refused_in_a_row == 1 or self.refused_in_a_row % 10 == 0:
                await self._error(
                    DomainError(
                        "Too many commands; slow down.",
                        code="rate_limit_exceeded",
                        details={
                            "rate_per_second": settings.WS_COMMAND_RATE,
                            "burst": settings.WS_COMMAND_BURST,
                        },
                    )
                )
            return
        self.refused_in_a_row = 0
        try:
            command, command_id = _parse(text_data)
        except InvalidCommand as exc:
            if self.access is None:
                await self._close(CLOSE_UNAUTHENTICATED, "Authentication required.")
            else:
                await self._error(exc)
            return
        name = command["command"]
        if self.access is None:
            if name != "auth":
                await self._close(CLOSE_UNAUTHENTICATED, "Authentication required.")
                return
            await self._authenticate(command.get("token"))
            return
        handler = self._handlers().get(name)
        try:
            if handler is None:
                raise InvalidCommand(
                    f"Unknown command {name!r}.",
                    details={"command": [f"One of {sorted(self._handlers())}."]},
                )
            await handler(command, command_id)
        except DomainError as exc:
            await self._error(exc, command=name, command_id=command_id)
        except Exception:
            logger.exception("ws %s command %s failed", self.connection_id, name)
            await self._error(
                DomainError("The command failed.", code="internal_error"),
                command=name,
                command_id=command_id,
            )

    def _handlers(self) -> dict[str, Callable[[dict, Any], Awaitable[None]]]:
        return {
            "subscribe": self._subscribe,
            "unsubscribe": self._unsubscribe,
            "ping": self._ping,
            "send_message": self._send_message,
            "resume": self._resume,
            "auth": self._auth_again,
        }

    async def _auth_again(self, command: dict, command_id: Any) -> None:
        raise InvalidCommand("Already authenticated.")

    async def _ping(self, command: dict, command_id: Any) -> None:
        await self._reply("pong", {"server_time": _now()}, command_id)

    async def _subscribe(self, command: dict, command_id: Any) -> None:
        assert self.access is not None
        if len(self.subscriptions) >= settings.WS_MAX_SUBSCRIPTIONS:
            raise InvalidCommand(
                f"At most {settings.WS_MAX_SUBSCRIPTIONS} subscriptions per connection."
            )
        self.subscription_count += 1
        subscription = subscription_parse(
            subscription_id=f"sub-{self.subscription_count}", command=command
        )
        await subscription_authorize(subscription, self.access)
        async with self.lock:
            # Join before reading the head: every event after the head is then heard live.
            await self._join(subscription.group(self.access.principal))
            _, newest = await database_sync_to_async(log_bounds)()
            head = newest or 0
            self.window.start_at(head)
            if self.resume_pending:
                self.resume_pending = False
                self._set_subscription(subscription)
                await self._reply("subscribed", subscription.describe(), command_id)
                await self._advance(head)
                return
            # The other subscriptions first catch up to the head, where this one starts.
            await self._advance(head)
            self._set_subscription(subscription)
        await self._reply("subscribed", subscription.describe(), command_id)

    async def _unsubscribe(self, command: dict, command_id: Any) -> None:
        subscription_id = command.get("subscription_id")
        if not isinstance(subscription_id, str):
            raise InvalidCommand(details={"subscription_id": ["Required string."]})
        async with self.lock:
            if self.subscriptions.pop(subscription_id, None) is None:
                raise SubscriptionNotFound(details={"subscription_id": subscription_id})
            self.scope_cache = self.plan_cache = _STALE
            await self._regroup()
        await self._reply("unsubscribed", {"subscription_id": subscription_id}, command_id)

    async def _send_message(self, command: dict, command_id: Any) -> None:
        assert self.access is not None
        missing = [name for name in ("channel_id", "content") if name not in command]
        if missing:
            raise InvalidCommand(
                "send_message needs channel_id and content.",
                details={name: ["Required."] for name in missing},
            )
        message = await database_sync_to_async(message_send)(
            principal=self.access.principal,
            grants=self.access.grants,
            channel_id=command["channel_id"],
            content=command["content"],
            metadata=command.get("metadata"),
        )
        await self._reply(
            "ack",
            {"message_id": str(message.message_id), "channel_id": str(message.channel_id)},
            command_id,
        )

    async def _resume(self, command: dict, command_id: Any) -> None:
        if "last_event_id" not in command:
            raise InvalidCommand(details={"last_event_id": ["Required."]})
        last_event_id = _event_id(command["last_event_id"])
        oldest, newest = await database_sync_to_async(log_bounds)()
        async with self.lock:
            replayed = await self._resume_at(
                last_event_id, oldest=oldest, newest=newest, command_id=command_id
            )
        if replayed is not None:
            await self._reply(
                "resumed",
                {
                    "from_event_id": last_event_id,
                    "replayed": replayed,
                    "last_event_id": self.cursor,
                },
                command_id,
            )

    async def _resume_at(
        self,
        last_event_id: int,
        *,
        oldest: int | None,
        newest: int | None,
        command_id: Any = None,
    ) -> int | None:
        """Replay after `last_event_id` (caller holds the lock, or nothing else runs yet).
        Returns how many events went out, or None when the client must resync instead."""
        if resync_needed(last_event_id=last_event_id, oldest=oldest, newest=newest):
            self.resume_pending = False
            self.cursor = max(self.cursor, newest or 0)
            await self._reply(
                "resync_required",
                {
                    "requested_event_id": last_event_id,
                    "oldest_event_id": oldest,
                    "last_event_id": self.cursor,
                },
                command_id,
            )
            return None
        self.cursor = last_event_id
        if not self.subscriptions:
            self.resume_pending = True  # replayed by the first subscribe
            return 0
        return await self._advance(newest or 0)

    # --- delivery --------------------------------------------------------------------------

    def live_now(self, upto: int, plans: dict[Any, Any] | None = None) -> bool:
        """`live` without awaiting, for the common case: a connection with nothing in
        progress, within the window, sending through realtime.wire, checking access from
        memory. True when done; False when `live` must run (it then goes on from the cursor,
        which stops before anything not sent here).

        `plans`, shared by the connections woken by one message, holds what was chosen for
        each (cursor, plan_key): connections with the same subscriptions and the same view
        make the same choice, which is then made once, not once per connection."""
        if self.closing or self.access is None or self.resume_pending or upto <= self.cursor:
            return True
        window = self.window
        write = self.write_frame
        if (
            write is None
            or not self.subscriptions
            or not _free(self.lock)
            or self.catch_up is not None
            or not window.covers(upto)
            or window.start is None
            or self.cursor < window.start
        ):
            return False
        # Nothing below awaits: no other coroutine of this connection runs meanwhile, as
        # if under the lock. Up to whatever the window holds, as `live`.
        rewound = self.sent_max > self.cursor  # a resume: what was sent must be skipped
        # The window may grow while another connection awaits: a plan holds for one end.
        key = None if rewound or plans is None else (self.cursor, window.end, self._plan_key())
        plan = None if key is None else plans.get(key)
        if plan is None:
            chosen = self._plan(rewound)
            if chosen is None:
                return False  # access needs a lookup
            plan = (chosen, window.end)
            if key is not None:
                plans[key] = plan
        chosen, end = plan
        for entry in chosen:
            if not write(entry.frame()):
                return False
            self._sent(entry.event_id)
            self.cursor = entry.event_id
        self.cursor = max(self.cursor, end)
        return True

    def _plan(self, rewound: bool) -> list[LoggedEvent] | None:
        """The window's entries after the cursor (to its end) this connection wants and may
        see, or None when access cannot be decided from memory."""
        access = self.access
        assert access is not None
        subscriptions = self.subscriptions.values()
        sent_set = self._already_sent()
        chosen = []
        for entry in self.window.after(self.cursor, self._scopes()):
            if entry.event_id not in sent_set and any(s.matches(entry) for s in subscriptions):
                visible = access.visible_now(entry)
                if visible is None:
                    return None
                if visible:
                    chosen.append(entry)
        return chosen

    def _plan_key(self) -> tuple:
        """Everything `_plan` depends on besides the cursor and the shared window."""
        if self.plan_cache is _STALE:
            assert self.access is not None
            principal, grants = self.access.principal, self.access.grants
            self.plan_cache = (
                frozenset(
                    (s.event_type, s.agent_id, s.channel_id, s.session_id, s.status)
                    for s in self.subscriptions.values()
                ),
                principal.is_admin,
                principal.user_id,
                principal.username,
                grants.read_messages,
                grants.read_agents,
            )
        return self.plan_cache

    async def live(self, upto: int) -> None:
        """The hub's wake-up: entries up to `upto` are committed (and, normally, in the window).
        Runs in the hub's task, one connection after the other: deliver from memory now, or,
        when that would wait (a command holds the lock, the cursor is behind the window, the
        window does not reach `upto`), leave it to this connection's catch-up task."""
        if self.closing or self.access is None or self.resume_pending or upto <= self.cursor:
            return
        window = self.window
        if (
            not _free(self.lock)
            or self.catch_up is not None
            or not window.covers(upto)
            or window.start is None
            or self.cursor < window.start
        ):
            self._defer(upto)
            return
        async with self.lock:
            # Whatever else the window already holds is committed too: send it now.
            await self._advance(upto, exact=False)

    def _defer(self, upto: int) -> None:
        self.pending = max(self.pending, upto)
        if self.catch_up is None and not self.closing:
            self.catch_up = asyncio.create_task(self._catch_up())

    async def _catch_up(self) -> None:
        try:
            while not self.closing:
                upto, self.pending = self.pending, 0
                if upto <= self.cursor:
                    break
                async with self.lock:
                    if not self.resume_pending and upto > self.cursor:
                        # Up to what the window holds: `upto` is a hint, and may be beyond
                        # what this database ever had.
                        await self._advance(upto, exact=False)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The database is away: the periodic sync tries again.
            logger.exception("ws %s live delivery failed", self.connection_id)
        finally:
            self.catch_up = None

    async def _advance(self, upto: int | None, *, exact: bool = True, max_age: float = 0.0):
        """Send every wanted entry in (cursor, upto] in order (upto None, or `exact` off: up
        to whatever the window holds once it reaches upto) and move the cursor there. Returns
        how many were sent. Caller holds the lock."""
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
            # Further behind than the window reaches: this connection's own query.
            sent += await self._replay(until=min(window.start, limit))
        access = self.access
        assert access is not None
        subscriptions = self.subscriptions.values()
        sent_set = self._already_sent()
        for entry in window.after(self.cursor, self._scopes()):
            if entry.event_id > limit:
                break
            # _wanted, without awaiting when memory can tell (the live path's usual case).
            if entry.event_id not in sent_set and any(s.matches(entry) for s in subscriptions):
                visible = access.visible_now(entry)
                if visible is None:
                    visible = await access.visible(entry)
                if visible:
                    await self._send_event(entry)
                    sent += 1
            self.cursor = entry.event_id
        self.cursor = max(self.cursor, limit)
        return sent

    async def _replay(self, *, until: int) -> int:
        batch_size = settings.WS_REPLAY_BATCH
        where = self._where()
        sent_set = self._already_sent()
        sent = 0
        while self.cursor < until:
            batch = await database_sync_to_async(log_entries)(
                after=self.cursor, upto=until, where=where, limit=batch_size
            )
            for entry in batch:
                if await self._wanted(entry, sent_set):
                    await self._send_event(entry)
                    sent += 1
                self.cursor = entry.event_id
            if len(batch) < batch_size:
                self.cursor = until
        return sent

    def _scopes(self) -> set[tuple[str, str | int]] | None:
        """The window index keys of every subscription (None: look at every entry); kept
        until the subscriptions or the principal change."""
        if self.scope_cache is not _STALE:
            return self.scope_cache
        assert self.access is not None
        scopes: set[tuple[str, str | int]] | None = set()
        for subscription in self.subscriptions.values():
            scope = subscription.scope(self.access.principal)
            if scope is None:
                scopes = None
                break
            scopes.add(scope)
        self.scope_cache = scopes
        return scopes

    def _set_subscription(self, subscription: Subscription) -> None:
        self.subscriptions[subscription.subscription_id] = subscription
        self.scope_cache = self.plan_cache = _STALE

    def _where(self) -> Q:
        assert self.access is not None
        wheres = [subscription.where() for subscription in self.subscriptions.values()]
        # An empty Q (a bare `*`) matches everything, but `Q(...) | Q()` would drop it.
        where = Q() if not all(wheres) else functools.reduce(operator.or_, wheres)
        access_filter = self.access.log_filter()
        return where if access_filter is None else where & access_filter

    async def _wanted(self, entry: LoggedEvent, sent_set: Container[int]) -> bool:
        assert self.access is not None
        if entry.event_id in sent_set or not any(
            s.matches(entry) for s in self.subscriptions.values()
        ):
            return False
        visible = self.access.visible_now(entry)
        return await self.access.visible(entry) if visible is None else visible

    def _sent(self, event_id: int) -> None:
        self.sent_ids.append(event_id)
        if event_id > self.sent_max:
            self.sent_max = event_id

    def _already_sent(self) -> Container[int]:
        """Ids after the cursor that were sent already: only after a rewinding `resume`
        (ids go out in order otherwise), the last _SENT_MEMORY ones."""
        if self.sent_max > self.cursor:
            return set(self.sent_ids)
        return ()

    async def _send_event(self, entry: LoggedEvent) -> None:
        self._sent(entry.event_id)
        # The entry's JSON and frame are made once for every connection.
        if self.write_frame is None or not self.write_frame(entry.frame()):
            await self.base_send({"type": "websocket.send", "text": entry.text()})

    async def _join(self, group: str) -> None:
        """Hear this group's events live, once the process's subscription is up."""
        if group not in self.joined:
            self.hub.join(self, group)
            self.joined.add(group)
        if not await self.hub.wait_ready(_HUB_READY_SECONDS):
            logger.warning(
                "ws %s: live events unavailable; delivering with the periodic sync",
                self.connection_id,
            )

    async def _regroup(self) -> None:
        """Join the groups the current subscriptions need and leave the others."""
        assert self.access is not None
        needed = {s.group(self.access.principal) for s in self.subscriptions.values()}
        for group in self.joined - needed:
            self.hub.leave(self, group)
        self.joined &= needed
        for group in needed - self.joined:
            await self._join(group)

    def _leave_all(self) -> None:
        self.hub.leave_all(self)
        self.joined.clear()

    # --- outgoing control messages ---------------------------------------------------------

    async def _send_json(self, message: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(message, cls=DjangoJSONEncoder))

    async def _reply(self, event: str, data: dict[str, Any], command_id: Any) -> None:
        message: dict[str, Any] = {"event": event, "data": data}
        if command_id is not None:
            message["id"] = command_id
        await self._send_json(message)

    async def _error(
        self, error: DomainError, *, command: str | None = None, command_id: Any = None
    ) -> None:
        data = {"code": error.code, "message": error.message, "details": error.details}
        if command is not None:
            data["command"] = command
        await self._reply("error", data, command_id)


def _parse(text: str | None) -> tuple[dict[str, Any], Any]:
    """A command object and its optional `id`; raises InvalidCommand."""
    if text is None:
        raise InvalidCommand("Commands are JSON text frames.")
    try:
        command = json.loads(text)
    except ValueError:
        raise InvalidCommand("The frame is not valid JSON.") from None
    if not isinstance(command, dict) or not isinstance(command.get("command"), str):
        raise InvalidCommand(
            'A command is an object with a "command" string.',
            details={"command": ["Required string."]},
        )
    command_id = command.get("id")
    if command_id is not None and not (
        (isinstance(command_id, str) and len(command_id) <= 128)
        or (isinstance(command_id, int) and not isinstance(command_id, bool))
    ):
        raise InvalidCommand(details={"id": ["A string of at most 128 characters or a number."]})
    return command, command_id


def _event_id(value: Any) -> int:
    """A last_event_id from a command (a number) or the query string (digits)."""
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidCommand(details={"last_event_id": ["A non-negative integer event id."]})
    return value
