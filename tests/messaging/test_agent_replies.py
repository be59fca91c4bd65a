"""Agents answer messages in their channels, through the Celery task (run eagerly here; the
e2e test runs it on the real worker)."""

import pytest

from agents.models import Agent, UsageRecord
from agents.services import agent_create, agent_start, agent_stop
from messaging.models import Channel, Message
from messaging.services import (
    agent_reply_store,
    agents_to_answer,
    channel_create,
    message_post_internal,
)
from messaging.tasks import agent_reply
from system.models import EventLogEntry

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


@pytest.fixture
def cash():
    return agent_start(agent=agent_create(name="cfo_cash", type="cfo_cash"))


@pytest.fixture
def channel(make_user, mimi):
    return channel_create(name="exec", type="public", members=["ceo_mimi"], actor=make_user("c"))


def say(channel, content="What should we focus on in Q4?", sender="user-1", **kwargs) -> Message:
    return message_post_internal(channel=channel, sender_id=sender, content=content, **kwargs)


def test_a_running_agent_member_answers_a_user_message(
    channel, mimi, eager_celery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        question = say(channel)

    reply = Message.objects.get(in_reply_to=question)
    assert reply.sender_id == str(mimi.agent_id)
    assert reply.sender_type == "agent"
    assert "Q4" in reply.content
    assert "offline" in reply.content.lower()
    events = EventLogEntry.objects.filter(event_type="new_message", channel_id=channel.channel_id)
    assert [e.payload["message"]["message_id"] for e in events.order_by("event_id")] == [
        str(question.message_id),
        str(reply.message_id),
    ]
    assert UsageRecord.objects.filter(agent=mimi, success=True).count() == 1


def test_the_agent_sees_the_recent_conversation(channel, mimi):
    say(channel, "First, revenue is flat.")
    question = say(channel, "So what now?")

    agent_reply(str(question.message_id), str(mimi.agent_id))

    assert "So what now?" in Message.objects.get(in_reply_to=question).content


def test_running_the_task_twice_stores_one_reply(channel, mimi):
    question = say(channel)

    first = agent_reply(str(question.message_id), str(mimi.agent_id))
    second = agent_reply(str(question.message_id), str(mimi.agent_id))

    assert (first, second) == ("answered", "already answered")
    assert Message.objects.filter(in_reply_to=question).count() == 1


def test_storing_a_duplicate_reply_is_refused_by_the_database(channel, mimi):
    question = say(channel)

    assert agent_reply_store(message=question, agent=mimi, content="one") is not None
    assert agent_reply_store(message=question, agent=mimi, content="two") is None
    assert Message.objects.filter(in_reply_to=question).count() == 1


def test_a_stopped_agent_does_not_answer(channel, mimi):
    question = say(channel)
    agent_stop(agent=mimi)

    assert agent_reply(str(question.message_id), str(mimi.agent_id)) == "agent not running"
    assert agents_to_answer(say(channel)) == []
    assert not Message.objects.filter(in_reply_to=question).exists()


def test_non_members_do_not_answer(channel, cash):
    assert cash.agent_id not in agents_to_answer(say(channel))


def test_agents_do_not_answer_agents_unless_the_channel_enables_it(channel, mimi, cash):
    channel.members.create(member_id=str(cash.agent_id), member_type="agent")
    question = say(channel)
    reply = agent_reply_store(message=question, agent=mimi, content="Plain reply")

    assert agents_to_answer(reply) == []


def test_message_metadata_no_longer_enables_agent_replies(channel, mimi, cash):
    channel.members.create(member_id=str(cash.agent_id), member_type="agent")
    question = say(channel, metadata={"allow_agent_replies": True})
    reply = agent_reply_store(message=question, agent=mimi, content="Plain reply")

    assert agents_to_answer(reply) == []
    assert reply.metadata == {}


def test_agent_to_agent_replies_stop_after_three_hops(channel, mimi, cash):
    Channel.objects.filter(pk=channel.pk).update(agent_replies_enabled=True)
    channel.refresh_from_db()
    channel.members.create(member_id=str(cash.agent_id), member_type="agent")
    message = say(channel)
    speakers = [mimi, cash, mimi]
    for hop, agent in enumerate(speakers, start=1):
        message = agent_reply_store(message=message, agent=agent, content=f"hop {hop}")
        assert message.reply_depth == hop

    assert agents_to_answer(message) == []


def test_an_agent_never_answers_itself(channel, mimi, cash):
    Channel.objects.filter(pk=channel.pk).update(agent_replies_enabled=True)
    channel.refresh_from_db()
    channel.members.create(member_id=str(cash.agent_id), member_type="agent")
    message = say(channel)
    reply = agent_reply_store(message=message, agent=mimi, content="mine")

    assert agents_to_answer(reply) == [cash.agent_id]


def test_a_spent_budget_means_no_reply_and_an_event_that_says_why(channel, mimi):
    Agent.objects.filter(pk=mimi.pk).update(config={**mimi.config, "daily_budget_usd": "0"})
    question = say(channel)

    outcome = agent_reply(str(question.message_id), str(mimi.agent_id))

    assert outcome == "agent_budget_exceeded"
    assert not Message.objects.filter(in_reply_to=question).exists()
    assert EventLogEntry.objects.filter(
        event_type="agent_budget_exceeded", agent_id=mimi.agent_id
    ).exists()
