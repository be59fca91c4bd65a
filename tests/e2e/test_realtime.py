"""The WebSocket endpoint on the real stack: daphne, the api process, the worker and Redis.

"Does not receive X" is asserted without waiting for silence: a socket delivers events in id
order, so when X is written before a marker the socket does receive, its first event must be
the marker.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from agents.services import agent_create, agent_start
from messaging.services import channel_create

pytestmark = [pytest.mark.e2e, pytest.mark.embedded]

WAIT = 60  # seconds; generous: an agent's reply goes through the worker


@asynccontextmanager
async def socket(stack, key: str, **query: Any) -> AsyncIterator[ClientConnection]:
    url = f"{stack.ws_url}?{urlencode({'token': key, **query})}"
    async with connect(url, proxy=None, open_timeout=WAIT) as ws:
        hello = await receive(ws)
        assert hello["event"] == "connection_established", hello
        yield ws


async def receive(ws: ClientConnection) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), WAIT))


async def command(ws: ClientConnection, **body: Any) -> dict[str, Any]:
    """Send a command; return its reply (logged events arriving meanwhile are skipped)."""
    await ws.send(json.dumps(body))
    while True:
        message = await receive(ws)
        if "event_id" not in message and message["event"] != "ping":
            return message


async def next_event(ws: ClientConnection, event_type: str = "new_message") -> dict[str, Any]:
    while True:
        message = await receive(ws)
        if message.get("event") == event_type and "event_id" in message:
            return message


async def subscribe(ws: ClientConnection, event_type: str, **filters: str) -> None:
    reply = await command(ws, command="subscribe", event_type=event_type, filter=filters)
    assert reply["event"] == "subscribed", reply


async def post_message(stack, key: str, channel, sender: str, content: str) -> str:
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=WAIT) as client:
        response = await client.post(
            f"/api/v1/channels/{channel.channel_id}/messages",
            json={"sender_id": sender, "content": content},
            headers={"X-API-KEY": key},
        )
    assert response.status_code == 201, response.text
    return response.json()["message_id"]


@pytest.fixture
def people(transactional_db, make_user, make_api_key):
    """alice and bob (messaging keys), root (admin key), a private channel of alice's and a
    public one. Keys carry their roles: no role groups needed on the transactional database."""
    alice, bob, root = make_user("alice"), make_user("bob"), make_user("root")
    return {
        "alice": make_api_key(["messaging"], owner=alice),
        "bob": make_api_key(["messaging"], owner=bob),
        "root": make_api_key(["admin"], owner=root),
        "private": channel_create(name="board", type="private", members=["alice"], actor=alice),
        "public": channel_create(name="general", type="public", members=[], actor=alice),
    }


async def test_a_message_posted_over_rest_reaches_exactly_the_sockets_allowed_to_see_it(
    live_stack, people
):
    private, public = people["private"], people["public"]
    async with (
        socket(live_stack, people["alice"]) as alice,
        socket(live_stack, people["bob"]) as bob,
        socket(live_stack, people["root"]) as root,
    ):
        await subscribe(alice, "message", channel_id=str(private.channel_id))
        await subscribe(bob, "*")
        await subscribe(root, "*")

        secret = await post_message(live_stack, people["alice"], private, "alice", "Q4 plan")
        marker = await post_message(live_stack, people["bob"], public, "bob", "hello all")

        assert (await next_event(alice))["data"]["message"]["message_id"] == secret
        assert (await next_event(root))["data"]["message"]["message_id"] == secret
        assert (await next_event(root))["data"]["message"]["message_id"] == marker
        assert (await next_event(bob))["data"]["message"]["message_id"] == marker


@pytest.fixture
def agent_channel(transactional_db, make_user, make_api_key):
    """A public channel with a running agent member, and a messaging key of carol's."""
    mimi = agent_start(agent=agent_create(name="ceo_mimi", type="ceo_mimi"))
    channel = channel_create(
        name="exec", type="public", members=["ceo_mimi"], actor=make_user("ops")
    )
    return mimi, channel, make_api_key(["messaging"], owner=make_user("carol"))


async def test_send_message_over_the_socket_gets_the_running_agents_reply(
    live_stack, agent_channel
):
    mimi, channel, key = agent_channel

    async with socket(live_stack, key) as ws:
        await subscribe(ws, "message", channel_id=str(channel.channel_id))
        ack = await command(
            ws,
            command="send_message",
            id="q",
            channel_id=str(channel.channel_id),
            content="Where do we stand on Q4?",
        )
        question = await next_event(ws)
        reply = await next_event(ws)

    assert ack["event"] == "ack", ack
    assert question["data"]["message"]["message_id"] == ack["data"]["message_id"]
    assert question["data"]["message"]["sender_id"] == "carol"
    assert reply["data"]["message"]["sender_id"] == str(mimi.agent_id)
    assert reply["data"]["message"]["in_reply_to"] == ack["data"]["message_id"]


async def test_a_client_that_reconnects_with_its_last_event_id_gets_what_it_missed(
    live_stack, people
):
    public = people["public"]
    async with socket(live_stack, people["alice"]) as ws:
        await subscribe(ws, "message", channel_id=str(public.channel_id))
        first = await post_message(live_stack, people["bob"], public, "bob", "one")
        last_event_id = (await next_event(ws))["event_id"]

    missed = [
        await post_message(live_stack, people["bob"], public, "bob", text)
        for text in ("two", "three")
    ]
    async with socket(live_stack, people["alice"], last_event_id=last_event_id) as ws:
        await subscribe(ws, "message", channel_id=str(public.channel_id))
        replayed = [await next_event(ws) for _ in missed]

    assert first not in missed
    assert [e["data"]["message"]["message_id"] for e in replayed] == missed
    assert replayed[0]["event_id"] > last_event_id


async def test_a_page_from_a_foreign_origin_is_refused_with_403(live_stack, people):
    url = f"{live_stack.ws_url}?{urlencode({'token': people['alice']})}"

    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, proxy=None, origin="https://evil.example"):
            pass

    assert refused.value.response.status_code == 403


async def test_a_bad_key_is_closed_with_4401_and_the_key_is_not_logged(live_stack):
    bad_key = "371os_0123456789ab_" + "f" * 64
    url = f"{live_stack.ws_url}?{urlencode({'token': bad_key})}"

    async with connect(url, proxy=None) as ws:
        await ws.wait_closed()

    assert ws.close_code == 4401
    assert bad_key not in live_stack.log_path.read_text(errors="replace")
