"""The reply task's cost: it sits between a user's message and the agent's answer on their
socket, so its round trips are counted here (an N+1 fails), and the worker must keep its
database connection from one task to the next instead of reconnecting for each."""

import pytest
from celery import signals
from celery.fixups.django import DjangoWorkerFixup
from django.db import connection

from agents.models import UsageRecord
from agents.services import agent_update
from config.celery import app as celery_app
from messaging.models import Message
from messaging.services import channel_create, message_record
from messaging.tasks import agent_reply

pytestmark = pytest.mark.embedded

# The message (with "already answered?" and its channel), the agent, the conversation, the
# ledger row, the agent's last_active, then the reply: the sender, the message, the event-log
# lock (PostgreSQL only) and the event, plus the savepoint pair of the test's transaction.
# Budgets are counted in Redis; an agent's first call of the day also reads its ledger to
# start the counter, so the tests below measure a later call.
REPLY_QUERIES = 11


@pytest.fixture
def channel(make_user, mimi):
    return channel_create(name="exec", type="public", members=["ceo_mimi"], actor=make_user("c"))


def say(channel, content: str, sender: str = "user-1") -> Message:
    return message_record(channel=channel, sender_id=sender, content=content)


@pytest.mark.django_db
@pytest.mark.parametrize("history", [0, 30])
def test_a_reply_costs_the_same_queries_however_long_the_conversation(
    channel, mimi, history, django_assert_max_num_queries
):
    for i in range(history):
        say(channel, f"note {i}", sender=f"user-{i % 4}")
    warm_up = say(channel, "Good morning.")
    agent_reply(str(warm_up.message_id), str(mimi.agent_id))
    question = say(channel, "What should we focus on in Q4?")

    with django_assert_max_num_queries(REPLY_QUERIES):
        assert agent_reply(str(question.message_id), str(mimi.agent_id)) == "answered"

    reply = Message.objects.get(in_reply_to=question)
    assert "Q4" in reply.content
    assert UsageRecord.objects.filter(agent=mimi, success=True).count() == 2


@pytest.mark.django_db
def test_an_own_daily_budget_costs_no_more_queries(channel, mimi, django_assert_max_num_queries):
    mimi = agent_update(agent=mimi, data={"config": {"daily_budget_usd": "5"}})
    warm_up = say(channel, "Good morning.")
    agent_reply(str(warm_up.message_id), str(mimi.agent_id))
    question = say(channel, "Within budget?")

    with django_assert_max_num_queries(REPLY_QUERIES):
        assert agent_reply(str(question.message_id), str(mimi.agent_id)) == "answered"


@pytest.mark.django_db
def test_a_spent_budget_still_stops_the_agent(channel, mimi):
    mimi = agent_update(agent=mimi, data={"config": {"daily_budget_usd": "0"}})
    question = say(channel, "Spend something?")

    assert agent_reply(str(question.message_id), str(mimi.agent_id)) == "agent_budget_exceeded"

    assert not Message.objects.filter(in_reply_to=question).exists()
    assert not UsageRecord.objects.filter(agent=mimi).exists()


@pytest.mark.django_db
def test_a_redelivered_task_stops_after_two_queries_without_calling_the_model(
    channel, mimi, django_assert_max_num_queries
):
    question = say(channel, "Once only, please.")
    assert agent_reply(str(question.message_id), str(mimi.agent_id)) == "answered"

    with django_assert_max_num_queries(2):
        assert agent_reply(str(question.message_id), str(mimi.agent_id)) == "already answered"

    assert Message.objects.filter(in_reply_to=question).count() == 1
    assert UsageRecord.objects.filter(agent=mimi).count() == 1


def test_the_reply_task_stores_no_result():
    # Nobody reads it; the Redis result backend would SUBSCRIBE in the posting process before
    # every enqueue, and SET and PUBLISH it after every reply.
    assert agent_reply.ignore_result is True


@pytest.mark.django_db(transaction=True)
def test_the_worker_keeps_its_database_connection_from_task_to_task():
    connection.ensure_connection()
    before = connection.connection
    fixup = DjangoWorkerFixup(celery_app)  # Celery's Django fixup, as a worker runs it

    for _ in range(3):
        fixup.on_task_prerun(sender=agent_reply)
        signals.task_prerun.send(sender=agent_reply, task_id="t", task=agent_reply)
        assert not Message.objects.exists()
        signals.task_postrun.send(sender=agent_reply, task_id="t", task=agent_reply)
        fixup.on_task_postrun(sender=agent_reply)

    assert connection.connection is before
