"""The `/v1/ws` consumer: authentication, commands, their rate limit, close codes and error
replies. Frames are JSON both ways (AsyncJsonWebsocketConsumer); the events a connection is
owed, and the cursor, subscriptions, replay and resume behind them, are its `Delivery`
(system.realtime.delivery), made once the connection is authenticated.
"""

import asyncio
import functools
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.utils import timezone

from system.kernel.exceptions import DomainError
from system.kernel.timefmt import IsoZJSONEncoder, iso_z
from system.realtime.access import Access, grants_for
from system.realtime.auth import (
    AuthenticationError,
    credentials_from_scope,
    principal_authenticate,
    principal_check,
    query_param,
)
from system.realtime.census import census
from system.realtime.commands import message_send
from system.realtime.control import ControlMixin
from system.realtime.db import db_call
from system.realtime.delivery import Delivery, replay_too_long
from system.realtime.frames import (
    CLOSE_POLICY_LIMIT,
    CLOSE_TOO_BIG,
    CLOSE_UNAUTHENTICATED,
    NOT_JSON,
    NOT_TEXT,
    CommandRate,
    command_parse,
    event_id_parse,
)
from system.realtime.guard import GuardMixin
from system.realtime.hub import hub
from system.realtime.log import log_bounds, log_window
from system.realtime.subscriptions import (
    InvalidCommand,
    subscription_authorize,
    subscription_parse,
    subscription_resolve,
)

logger = logging.getLogger(__name__)


def _now() -> str:
    return iso_z(timezone.now())


class EventStreamConsumer(ControlMixin, GuardMixin, AsyncJsonWebsocketConsumer):
    """Live events come from the hub (system.realtime.hub); the channel layer carries only
    the control messages of system.realtime.control (revocation, membership changes)."""

    async def connect(self) -> None:
        self.connection_id = str(uuid.uuid4())
        self.census = census()  # this process's open sockets, for the admin dashboard
        self.census.opened()
        self.access: Access | None = None
        self.delivery: Delivery | None = None  # once authenticated
        self.tasks: list[asyncio.Task] = []
        self.closing = False
        self.rate = CommandRate(rate=settings.WS_COMMAND_RATE, burst=settings.WS_COMMAND_BURST)
        self.subscription_count = 0
        # Accept first: only an open socket can be closed with 4401 and a reason.
        await self.accept()
        token = credentials_from_scope(self.scope)
        if token is None:
            if not await self.guard_admit():  # too many waiting to authenticate: closed
                return
            self.tasks.append(asyncio.create_task(self._auth_deadline()))
            return
        await self._authenticate(token)

    async def disconnect(self, code: int) -> None:
        if getattr(self, "census", None) is not None:
            self.census.closed()
            self.census = None
        self.closing = True
        self._stop()
        await self.guard_release(self.connection_id)
        await self.control_leave()
        if self.access is not None:
            label = self.access.principal.id
            logger.info("ws %s closed (%s) for %s", self.connection_id, code, label)

    # --- connection lifecycle ------------------------------------------------------------

    def _stop(self) -> None:
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()
        if self.delivery is not None:
            self.delivery.close()

    async def _close(self, code: int, reason: str) -> None:
        if self.closing:
            return
        self.closing = True
        self._stop()
        # A close reason is at most 123 bytes.
        await self.close(code=code, reason=reason.encode()[:123].decode(errors="ignore"))

    async def _auth_deadline(self) -> None:
        await asyncio.sleep(settings.WS_AUTH_TIMEOUT_SECONDS)
        if self.access is None:
            await self._close(CLOSE_UNAUTHENTICATED, "Authentication timed out.")

    async def _authenticate(self, token: Any) -> None:
        try:
            principal = await db_call(principal_authenticate)(token=token)
        except AuthenticationError as exc:
            logger.info("ws %s refused for %s: %s", self.connection_id, self.guard_ip, exc)
            await self._close(*await self.guard_refusal(CLOSE_UNAUTHENTICATED, str(exc)))
            return
        self._stop()  # the auth deadline
        await self.guard_release()
        if not await self.guard_sockets_admit(principal.id, self.connection_id):
            return  # closed: too many sockets of this principal or address
        grants = await db_call(grants_for)(principal)
        access = Access(principal, grants, ttl=settings.WS_AUTH_RECHECK_SECONDS)
        oldest, newest = await db_call(log_bounds)()
        window = log_window(settings.WS_LOG_WINDOW)  # this event loop's, shared
        self.delivery = Delivery(
            send=self.send,  # through ASGI: `send(text)` is `send(text_data=text)`
            access=access,
            window=window,
            hub=hub(),
            cursor=window.head(newest),
            name=self.connection_id,
        )
        self.access = access
        await self.control_join(principal)
        logger.info("ws %s opened for %s", self.connection_id, principal.id)
        data = {
            "connection_id": self.connection_id,
            "principal": principal.describe(),
            "server_time": _now(),
            "last_event_id": self.delivery.cursor,
        }
        await self._reply("connection_established", data, None)
        raw = query_param(self.scope, "last_event_id")
        if raw is not None:
            try:
                await self._resume_after(event_id_parse(raw), (oldest, newest))
            except InvalidCommand as exc:
                await self._error(exc, command="connect")
        self.tasks = [asyncio.create_task(self._housekeeping())]

    async def _housekeeping(self) -> None:
        """Server pings, credential re-checks, and the sync that delivers what the live path
        dropped when nothing arrived after it."""
        assert self.delivery is not None
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
                    await self.recheck()
                    await self.guard_sockets_renew(self.connection_id)
                if now >= due["sync"] and not self.closing:
                    due["sync"] = now + settings.WS_SYNC_SECONDS
                    await self.delivery.sync(max_age=settings.WS_SYNC_SECONDS / 2)
                if now >= due["ping"] and not self.closing:
                    due["ping"] = now + settings.WS_PING_SECONDS
                    await self.send_json({"event": "ping", "data": {"server_time": _now()}})
            except asyncio.CancelledError:
                raise
            except Exception:
                # The database or Redis is away: try again at the next due time.
                logger.exception("ws %s housekeeping failed", self.connection_id)

    async def recheck(self) -> None:
        """Check the credentials again: close with 4401 when they no longer hold, else take
        the principal's current roles."""
        if self.access is None or self.delivery is None or self.closing:
            return
        check = db_call(principal_check)
        try:
            principal = await check(principal=self.access.principal)
        except AuthenticationError as exc:
            await self._close(CLOSE_UNAUTHENTICATED, str(exc))
            return
        grants = await db_call(grants_for)(principal)
        access = Access(principal, grants, ttl=settings.WS_AUTH_RECHECK_SECONDS)
        access.directory = self.access.directory
        self.access = access
        await self.delivery.regrant(access)

    # --- incoming frames -----------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kw):
        """Size and rate checks before anything is parsed; then the base class decodes the
        JSON (`decode_json`) and hands it to `receive_json`."""
        if self.closing:
            return
        size = len(text_data.encode()) if text_data is not None else len(bytes_data or b"")
        if size > settings.WS_MAX_FRAME_BYTES:
            await self._close(CLOSE_TOO_BIG, "Frame too big.")
            return
        if not self.rate.take():
            await self._refused()
            return
        try:
            if not text_data:  # binary, or empty (which the base class would not decode)
                raise InvalidCommand(NOT_TEXT if text_data is None else NOT_JSON)
            await super().receive(text_data=text_data, **kw)
        except InvalidCommand as exc:  # not a command at all: receive_json answers the rest
            if self.access is None:
                await self._close(CLOSE_UNAUTHENTICATED, "Authentication required.")
            else:
                await self._error(exc)

    @classmethod
    async def decode_json(cls, text_data: str) -> Any:
        try:
            return json.loads(text_data)
        except ValueError:
            raise InvalidCommand(NOT_JSON) from None

    @classmethod
    async def encode_json(cls, content: Any) -> str:
        return json.dumps(content, cls=IsoZJSONEncoder)

    async def _refused(self) -> None:
        """A command over the rate: say so (now and then), or close a client that does not
        slow down."""
        if len(self.rate.refusals) > settings.WS_COMMAND_OVERFLOW_CLOSE:
            await self._close(CLOSE_POLICY_LIMIT, "Command rate limit exceeded.")
        elif self.rate.refused_in_a_row == 1 or self.rate.refused_in_a_row % 10 == 0:
            rate = {"rate_per_second": settings.WS_COMMAND_RATE, "burst": settings.WS_COMMAND_BURST}
            message = "Too many commands; slow down."
            await self._error(DomainError(message, code="rate_limit_exceeded", details=rate))

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        name, command_id = command_parse(content)  # InvalidCommand: answered by `receive`
        if self.access is None:
            if name != "auth":
                await self._close(CLOSE_UNAUTHENTICATED, "Authentication required.")
                return
            await self._authenticate(content.get("token"))
            return
        handlers = self._handlers()
        try:
            if name not in handlers:
                one_of = [f"One of {sorted(handlers)}."]
                raise InvalidCommand(f"Unknown command {name!r}.", details={"command": one_of})
            await handlers[name](content, command_id)
        except DomainError as exc:
            await self._error(exc, command=name, command_id=command_id)
        except Exception:
            logger.exception("ws %s command %s failed", self.connection_id, name)
            failed = DomainError("The command failed.", code="internal_error")
            await self._error(failed, command=name, command_id=command_id)

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
        assert self.access is not None and self.delivery is not None
        if len(self.delivery.subscriptions) >= settings.WS_MAX_SUBSCRIPTIONS:
            limit = settings.WS_MAX_SUBSCRIPTIONS
            raise InvalidCommand(f"At most {limit} subscriptions per connection.")
        self.subscription_count += 1
        subscription_id = f"sub-{self.subscription_count}"
        subscription = subscription_parse(subscription_id=subscription_id, command=command)
        await subscription_authorize(subscription, self.access)
        subscription = await subscription_resolve(subscription)
        confirm = functools.partial(self._reply, "subscribed", subscription.describe(), command_id)
        await self.delivery.subscribe(subscription, confirm=confirm)

    async def _unsubscribe(self, command: dict, command_id: Any) -> None:
        assert self.delivery is not None
        subscription_id = command.get("subscription_id")
        if not isinstance(subscription_id, str):
            raise InvalidCommand(details={"subscription_id": ["Required string."]})
        await self.delivery.unsubscribe(subscription_id)
        await self._reply("unsubscribed", {"subscription_id": subscription_id}, command_id)

    async def _send_message(self, command: dict, command_id: Any) -> None:
        assert self.access is not None
        if missing := [name for name in ("channel_id", "content") if name not in command]:
            details = {name: ["Required."] for name in missing}
            raise InvalidCommand("send_message needs channel_id and content.", details=details)
        message = await db_call(message_send)(
            principal=self.access.principal,
            grants=self.access.grants,
            channel_id=command["channel_id"],
            content=command["content"],
            metadata=command.get("metadata"),
        )
        data = {"message_id": str(message.message_id), "channel_id": str(message.channel_id)}
        await self._reply("ack", data, command_id)

    async def _resume(self, command: dict, command_id: Any) -> None:
        assert self.delivery is not None
        if "last_event_id" not in command:
            raise InvalidCommand(details={"last_event_id": ["Required."]})
        last_event_id = event_id_parse(command["last_event_id"])
        bounds = await db_call(log_bounds)()
        replayed = await self._resume_after(last_event_id, bounds, command_id)
        if replayed is not None:
            cursor = self.delivery.cursor
            data = {"from_event_id": last_event_id, "replayed": replayed, "last_event_id": cursor}
            await self._reply("resumed", data, command_id)

    async def _resume_after(
        self, last_event_id: int, bounds: tuple[int | None, int | None], command_id: Any = None
    ) -> int | None:
        """Replay after `last_event_id` (`bounds`: the log's oldest and newest ids); returns
        how many events went out, or None after telling the client to resync instead."""
        assert self.delivery is not None
        oldest, newest = bounds
        replayed = await self.delivery.resume(last_event_id, oldest=oldest, newest=newest)
        if replayed is None:
            data = {"requested_event_id": last_event_id, "oldest_event_id": oldest}
            data["last_event_id"] = self.delivery.cursor
            too_long = replay_too_long(last_event_id, newest)
            data["reason"] = "replay_too_long" if too_long else "events_pruned"
            data["max_replay_events"] = settings.WS_REPLAY_MAX_EVENTS
            await self._reply("resync_required", data, command_id)
        return replayed

    # --- outgoing control messages ---------------------------------------------------------

    async def _reply(self, event: str, data: dict[str, Any], command_id: Any) -> None:
        message: dict[str, Any] = {"event": event, "data": data}
        if command_id is not None:
            message["id"] = command_id
        await self.send_json(message)

    async def _error(
        self, error: DomainError, *, command: str | None = None, command_id: Any = None
    ) -> None:
        data = {"code": error.code, "message": error.message, "details": error.details}
        if command is not None:
            data["command"] = command
        await self._reply("error", data, command_id)
