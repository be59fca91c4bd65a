"""WebSocket consumer tests: WebsocketCommunicator against the real ASGI application (origin
check, routes, consumer), the real database in transactional mode (the consumer reads it from
its own thread), and live events through the real Redis at REDIS_URL (pub/sub, one
subscription per event loop: system.realtime.hub)."""

import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Group
from django.db import connections, transaction

from messaging.services import channel_create
from system.auth.services import token_obtain
from system.eventlog.events import EventScope
from system.eventlog.services import event_emit
from system.kernel.roles import ROLES
from system.realtime.routing import websocket_application

PASSWORD = "pw-123456!"
WAIT = 10  # seconds: generous, only ever reached when something is wrong


class Socket:
    """One client connection with the helpers the tests speak in."""

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.communicator = communicator

    async def receive(self, timeout: float = WAIT) -> dict[str, Any]:
        output = await self.communicator.receive_output(timeout)
        if output["type"] == "websocket.close":
            return {"closed": output.get("code"), "reason": output.get("reason")}
        return json.loads(output["text"])

    async def send(self, **command: Any) -> None:
        await self.communicator.send_to(text_data=json.dumps(command))

    async def command(self, **command: Any) -> dict[str, Any]:
        """Send a command and return the next control message (events are skipped)."""
        await self.send(**command)
        while True:
            message = await self.receive()
            if "event_id" not in message:
                return message

    async def subscribe(self, event_type: str = "*", **filters: Any) -> dict[str, Any]:
        reply = await self.command(command="subscribe", event_type=event_type, filter=filters)
        assert reply["event"] == "subscribed", reply
        return reply

    async def next_event(self, timeout: float = WAIT) -> dict[str, Any]:
        """The next logged event (control messages such as pings are skipped)."""
        while True:
            message = await self.receive(timeout)
            if "event_id" in message or "closed" in message:
                return message

    async def closed(self) -> tuple[int, str]:
        while True:
            message = await self.receive()
            if "closed" in message:
                return message["closed"], message["reason"]

    async def nothing_pending(self) -> bool:
        return await self.communicator.receive_nothing(timeout=0.05)

    async def disconnect(self) -> None:
        await self.communicator.disconnect(timeout=WAIT)


@pytest.fixture(autouse=True)
def _own_events_channel(settings) -> None:
    """Live events on a pub/sub channel of this test's own: pub/sub ignores the Redis DB
    number, and other test runs may share the server (their ids mean nothing here)."""
    settings.WS_EVENTS_CHANNEL = f"371os:test:{uuid.uuid4().hex[:12]}:events"


@pytest.fixture(autouse=True)
def _role_groups(transactional_db) -> None:
    """The role groups come from a data migration, which a transactional test's flush
    empties; users get their roles (and JWTs their `roles` claim) from these groups."""
    for role in ROLES:
        Group.objects.get_or_create(name=role)


@pytest.fixture(autouse=True)
async def _close_thread_connections() -> AsyncIterator[None]:
    """The consumer's ORM calls run in asgiref's sync thread, whose database connection would
    otherwise outlive the test (and keep the test database from being dropped)."""
    yield
    await database_sync_to_async(connections.close_all)()


@pytest.fixture
async def open_socket() -> AsyncIterator[Callable[..., Any]]:
    """open_socket(token=..., headers=..., path=..., **query) → a connected Socket; every socket
    is disconnected after the test."""
    sockets: list[Socket] = []

    async def open_(
        *,
        token: str | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
        path: str = "/v1/ws",
        established: bool = True,
        **query: Any,
    ) -> Socket:
        if token is not None:
            query = {"token": token, **query}
        url = f"{path}?{urlencode(query)}" if query else path
        socket = Socket(WebsocketCommunicator(websocket_application(), url, headers=headers))
        sockets.append(socket)
        connected, code = await socket.communicator.connect(timeout=WAIT)
        if not connected:
            socket.refused_with = code
            return socket
        if established:
            hello = await socket.receive()
            assert hello.get("event") == "connection_established", hello
            socket.hello = hello
        return socket

    yield open_
    for socket in sockets:
        await socket.communicator.disconnect(timeout=WAIT)


def emit_now(event_type: str, data: dict[str, Any] | None = None, **scope: Any) -> int:
    """Log and publish one event, as a service would; returns its id."""
    with transaction.atomic():
        return event_emit(
            event_type=event_type, data=data or {}, scope=EventScope(**scope)
        ).event_id


emit = database_sync_to_async(emit_now)


@pytest.fixture
def jwt_for():
    """await jwt_for(user) → an access token, as POST /api/v1/auth/token issues it."""

    @database_sync_to_async
    def for_user(user) -> str:
        return token_obtain(username=user.username, password=PASSWORD)["access"]

    return for_user


@pytest.fixture
def key_for(make_api_key):
    """await key_for(user, "messaging") → an API key of that user with those roles."""

    @database_sync_to_async
    def for_user(user, *roles: str, **kwargs: Any) -> str:
        return make_api_key(list(roles), owner=user, **kwargs)

    return for_user


def new_id() -> uuid.UUID:
    return uuid.uuid4()


# --- the usual cast: alice (messaging role), the public channel `general`, alice's socket ----


@pytest.fixture
def alice(make_user):
    return make_user("alice", roles=("messaging",))


@pytest.fixture
def public(alice):
    return channel_create(name="general", type="public", members=[], actor=alice)


@pytest.fixture
def connect(open_socket, jwt_for, alice):
    """await connect(**query) → alice's socket (a JWT)."""

    async def connect_(**query):
        return await open_socket(token=await jwt_for(alice), **query)

    return connect_


@pytest.fixture
def connect_as(open_socket, jwt_for):
    """await connect_as(user) → a socket authenticated with a JWT of that user (its roles)."""

    async def connect_(user):
        return await open_socket(token=await jwt_for(user))

    return connect_


# --- the others: bob (messaging), root (admin), nobody (no role), a monitor, alice's board ----


@pytest.fixture
def bob(make_user):
    return make_user("bob", roles=("messaging",))


@pytest.fixture
def root(make_user):
    return make_user("root", roles=("admin",))


@pytest.fixture
def nobody(make_user):
    return make_user("nobody")


@pytest.fixture
def monitor(make_user):
    return make_user("monitor", roles=("system_monitor",))


@pytest.fixture
def private(alice):
    return channel_create(name="board", type="private", members=["alice"], actor=alice)


async def received_ids(socket, count: int) -> list[int]:
    return [(await socket.next_event())["event_id"] for _ in range(count)]
