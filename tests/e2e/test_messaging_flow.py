"""A user posts through the API; the running agent answers through the real worker."""

import time

import httpx
import pytest

from agents.services import agent_create, agent_start
from messaging.services import channel_create
from system.models import EventLogEntry

pytestmark = [pytest.mark.e2e, pytest.mark.embedded]


def test_user_message_gets_an_agent_reply_through_the_worker(
    live_stack, transactional_db, make_user, make_api_key
):
    mimi = agent_start(agent=agent_create(name="ceo_mimi", type="ceo_mimi"))
    channel = channel_create(
        name="exec", type="public", members=["ceo_mimi"], actor=make_user("ops")
    )
    headers = {"X-API-KEY": make_api_key(["messaging"])}
    messages_url = f"{live_stack.api_url}/api/v1/channels/{channel.channel_id}/messages"

    posted = httpx.post(
        messages_url,
        json={"sender_id": "user-1", "content": "Where do we stand on Q4?"},
        headers=headers,
    )
    assert posted.status_code == 201
    deadline = time.monotonic() + 60
    history: list[dict] = []
    while time.monotonic() < deadline and len(history) < 2:
        time.sleep(0.25)
        history = httpx.get(messages_url, headers=headers).json()["messages"]

    assert len(history) == 2, live_stack.log_tail()
    question, reply = history
    assert question["message_id"] == posted.json()["message_id"]
    assert reply["sender_id"] == str(mimi.agent_id)
    assert reply["sender_type"] == "agent"
    assert reply["in_reply_to"] == question["message_id"]
    logged = EventLogEntry.objects.filter(event_type="new_message", channel_id=channel.channel_id)
    assert sorted(e.payload["message"]["message_id"] for e in logged) == sorted(
        [question["message_id"], reply["message_id"]]
    )
