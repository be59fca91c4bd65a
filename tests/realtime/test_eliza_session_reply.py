"""The agent's reply to an ElizaOS session message, live over /v1/ws: a `new_message` whose
`data.message` carries ElizaOS's message-bus keys, as the REST answer does (issue 16)."""

import pytest
from channels.db import database_sync_to_async
from rest_framework.test import APIClient

from agents.services import agent_create, agent_start
from config.celery import app as celery_app
from system.auth.services import api_key_create

pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]

USER_UUID = "5f0c2b8e-3a4d-4c1e-9b7a-2d6e8f1a0c3b"
BUS_KEYS = {
    "id", "channel_id", "message_server_id", "author_id", "content", "created_at",
    "source_type", "raw_message", "metadata", "in_reply_to_message_id",
}  # fmt: skip


@pytest.fixture
def key(root) -> str:
    return api_key_create(name="partner", roles=["messaging"], created_by=root)[1]


@pytest.fixture
def mimi(transactional_db):
    return agent_start(agent=agent_create(name="ceo_mimi", type="ceo_mimi"))


def rest(key: str, url: str, body: dict) -> dict:
    """A POST with the worker's replies run eagerly, as the websocket transport's worker would."""
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=key)
    celery_app.conf.task_always_eager = True
    try:
        response = client.post(url, body, format="json")
    finally:
        celery_app.conf.task_always_eager = False
    assert response.status_code == 201, response.content
    return response.json()


call = database_sync_to_async(rest)


async def test_the_agents_live_reply_carries_the_bus_record_keys(open_socket, key, mimi):
    session = await call(
        key, "/api/messaging/sessions", {"agentId": str(mimi.agent_id), "userId": USER_UUID}
    )
    socket = await open_socket(token=key)
    await socket.subscribe("new_message", channel_id=session["channelId"])

    sent = await call(
        key, f"/api/messaging/sessions/{session['sessionId']}/messages", {"content": "hello"}
    )
    first, second = await socket.next_event(), await socket.next_event()

    user, reply = first["data"]["message"], second["data"]["message"]
    assert set(user) >= BUS_KEYS and set(reply) >= BUS_KEYS
    assert {k: user[k] for k in BUS_KEYS} == {k: sent["userMessage"][k] for k in BUS_KEYS}
    assert reply["author_id"] == str(mimi.agent_id)
    assert reply["channel_id"] == session["channelId"]
    assert isinstance(reply["created_at"], int)
    assert reply["source_type"] == "agent_response"
    assert reply["raw_message"]["content"] == reply["content"]
    assert reply["metadata"]["sessionId"] == session["sessionId"]
    assert reply["in_reply_to_message_id"] == sent["userMessage"]["id"]
