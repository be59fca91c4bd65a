"""Messages in the back office: senders by name, readable content, the channel's name, and one
query for a page's agent names however many rows it has."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agents.services import agent_create
from messaging.models import Message
from messaging.services import channel_create, message_post, message_record
from system.kernel.principal import Principal

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

LONG = "The quarterly numbers are in. " * 10


@pytest.fixture
def staff(client, make_user):
    client.force_login(make_user("chief", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def as_agent(make_user):
    """as_agent(channel, "ceo_mimi", "text") → a message sent as that agent by an admin."""
    user = make_user("agent-admin")
    admin_principal = Principal(user_id=user.pk, username=user.username, roles=frozenset({"admin"}))

    def send(channel, agent_name: str, content: str) -> Message:
        return message_post(
            principal=admin_principal, channel=channel, sender_id=agent_name, content=content
        )

    return send


@pytest.fixture
def exec_channel(make_user, mimi):
    return channel_create(
        name="exec-room", type="public", members=["ceo_mimi"], actor=make_user("owner")
    )


def test_message_list_names_agents_and_shows_users_and_external_ids_as_sent(
    staff, exec_channel, make_user, as_agent
):
    make_user("alice")
    as_agent(exec_channel, "ceo_mimi", "From the CEO")
    message_record(channel=exec_channel, sender_id="alice", content="From Alice")
    message_record(channel=exec_channel, sender_id="eliza-user-42", content="From outside")

    page = staff.get("/admin/messaging/message/").content.decode()

    senders = re.findall(r'<td class="field-sender">([^<]*)</td>', page)
    assert sorted(senders) == ["alice", "ceo_mimi (agent)", "eliza-user-42"]
    assert re.findall(r'<td class="field-channel_name">([^<]*)</td>', page) == ["exec-room"] * 3


def test_message_list_truncates_content_and_the_page_shows_it_whole(staff, exec_channel, as_agent):
    message = as_agent(exec_channel, "ceo_mimi", LONG)

    listing = staff.get("/admin/messaging/message/").content.decode()
    detail = staff.get(f"/admin/messaging/message/{message.pk}/change/").content.decode()

    assert LONG.strip() not in listing
    assert "The quarterly numbers are in. The quarterly numbers are in. The quarterly" in listing
    assert LONG.strip() in detail
    assert "ceo_mimi (agent)" in detail


def test_message_list_names_senders_with_one_query_whatever_the_rows(staff, exec_channel, as_agent):
    for index in range(3):
        agent_create(name=f"agent-{index}", type="cfo_cash")
        as_agent(exec_channel, f"agent-{index}", "hello")
    with CaptureQueriesContext(connection) as few:
        staff.get("/admin/messaging/message/")
    for index in range(3, 12):
        agent_create(name=f"agent-{index}", type="cfo_cash")
        as_agent(exec_channel, f"agent-{index}", "hello")

    with CaptureQueriesContext(connection) as many:
        page = staff.get("/admin/messaging/message/").content.decode()

    assert "agent-11 (agent)" in page
    assert len(many.captured_queries) == len(few.captured_queries)
    agent_queries = [q for q in many.captured_queries if '"agents_agent"' in q["sql"]]
    assert len(agent_queries) == 1
