"""Ownership over the WebSocket (issue 15): a standalone key's session conversation reaches
its owner live (ElizaOS's default `websocket` transport), and nothing of it reaches another
partner's key."""

import pytest
from channels.db import database_sync_to_async
from rest_framework.test import APIClient

from agents.services import agent_create, agent_start
from system.auth.services import api_key_create

pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]

USER_UUID = "5f0c2b8e-3a4d-4c1e-9b7a-2d6e8f1a0c3b"


@pytest.fixture
def partner_keys(root):
    """Two standalone `messaging` keys made by the admin `root` for partners A and B."""
    return [
        api_key_create(name=f"partner-{n}", roles=["messaging"], created_by=root)[1]
        for n in ("a", "b")
    ]


@pytest.fixture
def mimi(transactional_db):
    return agent_start(agent=agent_create(name="ceo_mimi", type="ceo_mimi"))


def rest(key: str, method: str, url: str, body: dict | None = None) -> dict:
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=key)
    response = getattr(client, method)(url, body, format="json")
    assert response.status_code in (200, 201), response.content
    return response.json()


call = database_sync_to_async(rest)


async def test_an_elizaos_session_owner_receives_its_message_and_the_agent_reply(
    open_socket, partner_keys, mimi
):
    key = partner_keys[0]
    session = await call(
        key, "post", "/api/messaging/sessions", {"agentId": str(mimi.agent_id), "userId": USER_UUID}
    )
    socket = await open_socket(token=key)
    await socket.subscribe("new_message", channel_id=session["channelId"])

    await call(
        key,
        "post",
        f"/api/messaging/sessions/{session['sessionId']}/messages",
        {"content": "hello", "transport": "http"},
    )
    first, second = await socket.next_event(), await socket.next_event()

    assert first["event"] == second["event"] == "new_message"
    assert first["data"]["message"]["sender_id"] == USER_UUID
    assert second["data"]["message"]["sender_type"] == "agent"


async def test_another_partners_key_receives_nothing_of_a_session(
    open_socket, partner_keys, mimi, public
):
    key_a, key_b = partner_keys
    session = await call(
        key_a,
        "post",
        "/api/messaging/sessions",
        {"agentId": str(mimi.agent_id), "userId": USER_UUID},
    )
    socket = await open_socket(token=key_b)
    await socket.subscribe("*")
    denied = await socket.command(
        command="subscribe", event_type="new_message", filter={"channel_id": session["channelId"]}
    )

    await call(
        key_a,
        "post",
        f"/api/messaging/sessions/{session['sessionId']}/messages",
        {"content": "hello", "transport": "http"},
    )
    marker = await call(
        key_b,
        "post",
        f"/api/v1/channels/{public.channel_id}/messages",
        {"sender_id": "user-2", "content": "marker"},
    )
    event = await socket.next_event()

    assert denied["event"] == "error"
    assert event["data"]["message"]["message_id"] == marker["message_id"]
