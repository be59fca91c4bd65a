"""The owner-by-object matrix over the WebSocket (the REST half is
tests/system/test_owner_matrix.py): for a session, a private channel and an ElizaOS session's
conversation, owned by a user or by a standalone key, another user's or key's socket may not
subscribe with that object's filter, and its `*` subscription receives none of the owner's
events. Sockets deliver in id order, so when the owner's events are written before a marker
the intruder does receive, the intruder's first event must be the marker."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from channels.db import database_sync_to_async
from rest_framework.test import APIClient

from agents.services import agent_create, agent_start
from system.auth.services import api_key_create, token_obtain
from tests.realtime.conftest import PASSWORD

pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]

USER_UUID = "5f0c2b8e-3a4d-4c1e-9b7a-2d6e8f1a0c3b"


@dataclass(frozen=True)
class Caller:
    token: str  # what the socket authenticates with
    header: dict[str, str]  # the same credential for REST


def rest(caller: Caller, method: str, url: str, body: dict[str, Any] | None = None) -> dict:
    client = APIClient()
    client.credentials(**caller.header)
    response = getattr(client, method)(url, body, format="json")
    assert response.status_code in (200, 201, 202), response.content
    return response.json()


call = database_sync_to_async(rest)


@pytest.fixture
def callers(alice, bob, root) -> dict[str, Caller]:
    """Two users (JWTs, `messaging` by group), two standalone `messaging` keys the admin
    `root` made (each key a principal of its own), and root itself."""

    def user(person) -> Caller:
        access = token_obtain(username=person.username, password=PASSWORD)["access"]
        return Caller(access, {"HTTP_AUTHORIZATION": f"Bearer {access}"})

    def key(name: str) -> Caller:
        secret = api_key_create(name=name, roles=["messaging"], created_by=root)[1]
        return Caller(secret, {"HTTP_X_API_KEY": secret})

    return {
        "alice": user(alice),
        "bob": user(bob),
        "key_a": key("a"),
        "key_b": key("b"),
        "admin": user(root),
    }


@pytest.fixture
def mimi(transactional_db):
    return agent_start(agent=agent_create(name="ceo_mimi", type="ceo_mimi"))


@dataclass(frozen=True)
class Watched:
    """An object of the owner's: the filter that watches it and what makes it emit events."""

    event_type: str
    filter: dict[str, str]
    activity: Callable[[], Awaitable[Any]]


async def v1_session(owner: Caller, agent_id: str) -> Watched:
    body = {"agent_id": "ceo_mimi", "user_id": "user-1"}
    session_id = (await call(owner, "post", "/api/v1/sessions", body))["session_id"]
    return Watched(
        "*",
        {"session_id": session_id},
        lambda: call(owner, "post", f"/api/v1/sessions/{session_id}/end"),
    )


async def private_channel(owner: Caller, agent_id: str) -> Watched:
    body = {"name": "board", "type": "private", "members": ["user-1"]}
    channel_id = (await call(owner, "post", "/api/v1/channels", body))["channel_id"]
    message = {"sender_id": "user-1", "content": "Q4 plan"}
    return Watched(
        "new_message",
        {"channel_id": channel_id},
        lambda: call(owner, "post", f"/api/v1/channels/{channel_id}/messages", message),
    )


async def eliza_conversation(owner: Caller, agent_id: str) -> Watched:
    body = {"agentId": agent_id, "userId": USER_UUID}
    session = await call(owner, "post", "/api/messaging/sessions", body)
    url = f"/api/messaging/sessions/{session['sessionId']}/messages"
    message = {"content": "hello", "transport": "http"}  # the user's message and the reply
    return Watched(
        "new_message",
        {"channel_id": session["channelId"]},
        lambda: call(owner, "post", url, message),
    )


OBJECTS = {
    "session": v1_session,
    "private channel": private_channel,
    "ElizaOS conversation": eliza_conversation,
}
PAIRS = [("alice", "bob"), ("alice", "key_b"), ("key_a", "bob"), ("key_a", "key_b")]
CASES = [
    pytest.param(kind, owner, intruder, id=f"{intruder}-on-{owner}'s-{kind}")
    for kind in OBJECTS
    for owner, intruder in PAIRS
]


@pytest.mark.parametrize("kind, owner, intruder", CASES)
async def test_another_principal_may_not_subscribe_to_the_object(
    kind, owner, intruder, callers, mimi, open_socket
):
    watched = await OBJECTS[kind](callers[owner], str(mimi.agent_id))
    socket = await open_socket(token=callers[intruder].token)

    reply = await socket.command(
        command="subscribe", event_type=watched.event_type, filter=watched.filter
    )

    assert reply["event"] == "error", reply
    assert reply["data"]["code"] == "insufficient_permissions"


@pytest.mark.parametrize("kind, owner, intruder", CASES)
async def test_another_principals_firehose_receives_none_of_the_objects_events(
    kind, owner, intruder, callers, mimi, public, open_socket
):
    watched = await OBJECTS[kind](callers[owner], str(mimi.agent_id))
    socket = await open_socket(token=callers[intruder].token)
    await socket.subscribe("*")
    admin = await open_socket(token=callers["admin"].token)  # proves the activity emitted
    await admin.subscribe("*")

    await watched.activity()
    marker = await call(
        callers[intruder],
        "post",
        f"/api/v1/channels/{public.channel_id}/messages",
        {"sender_id": "user-2", "content": "marker"},
    )
    event, owners_event = await socket.next_event(), await admin.next_event()

    assert event["event"] == "new_message", event
    assert event["data"]["message"]["message_id"] == marker["message_id"]
    assert owners_event["event_id"] < event["event_id"]


@pytest.mark.parametrize("kind", OBJECTS)
async def test_the_owner_may_subscribe_to_its_object(kind, callers, mimi, open_socket):
    watched = await OBJECTS[kind](callers["key_a"], str(mimi.agent_id))
    socket = await open_socket(token=callers["key_a"].token)

    reply = await socket.subscribe(watched.event_type, **watched.filter)

    assert reply["event"] == "subscribed"
