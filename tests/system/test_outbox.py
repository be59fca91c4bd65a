"""The transactional outbox: with the Celery broker unreachable (a closed local port), writes
still answer 2xx, the live publish still runs, the queued work waits in the outbox, and the
sweep sends it once the broker (the real Redis) is back. Real commits throughout: the hooks
run when each request's transaction commits, as in production."""

import logging
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from celery import shared_task
from django.conf import settings as django_settings
from django.db import connection, transaction
from django.utils import timezone

from agents.services import agent_create, agent_start
from config.celery import app as celery_app
from messaging.models import Message
from messaging.services import channel_create, message_post_internal
from questflow.models import Deployment, Meeting, Workflow
from system.devserver.embedded_redis import free_port
from system.eventlog.events import decode
from system.kernel.outbox import enqueue, outbox_sweep
from system.kernel.redis_client import get_redis
from system.kernel.tasks import ping
from system.models import EventLogEntry, OutboxMessage, SystemTask

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.embedded]


class Broker:
    """Points Celery at a closed local port (`down()`) and back at the real Redis (`up()`)."""

    def __init__(self, settings) -> None:
        self.settings = settings
        self.real_url = settings.CELERY_BROKER_URL

    def down(self) -> None:
        self._use(f"redis://127.0.0.1:{free_port()}/0")

    def up(self) -> None:
        self._use(self.real_url)

    def _use(self, url: str) -> None:
        self.settings.CELERY_BROKER_URL = url
        assert celery_app.conf.broker_url == url
        # Celery keeps the connection pool made from the URL it first used: drop it, so that
        # every publisher (Celery's own delay() as much as the outbox) meets this broker.
        celery_app._pool = None
        celery_app.amqp._producer_pool = None


@pytest.fixture
def broker(settings):
    broker = Broker(settings)
    yield broker
    broker.up()


@pytest.fixture
def queue():
    """The tasks this test sends go to a queue of its own, read back by the test."""
    previous = celery_app.conf.task_default_queue
    name = f"tests.outbox.{uuid.uuid4().hex}"
    celery_app.conf.task_default_queue = name
    yield name
    celery_app.conf.task_default_queue = previous
    get_redis().delete(name, f"_kombu.binding.{name}")


@pytest.fixture
def due_at_once(settings):
    """Unsent rows are due at once (no backoff), so the test's sweep finds them."""
    settings.OUTBOX_RETRY_SECONDS = 0


@pytest.fixture
def mimi():
    return agent_start(agent=agent_create(name="ceo_mimi", type="ceo_mimi"))


@pytest.fixture
def channel(make_user, mimi):
    return channel_create(name="exec", type="public", members=["ceo_mimi"], actor=make_user("c"))


def post_message(client, channel, key: str):
    return client.post(
        f"/api/v1/channels/{channel.channel_id}/messages",
        {"sender_id": "user-1", "content": "What should we focus on in Q4?"},
        format="json",
        HTTP_IDEMPOTENCY_KEY=key,
    )


def run_what_the_broker_holds(queue: str) -> list[str]:
    """What a worker would do: take each task message off the queue and run it."""
    ran = []
    with celery_app.connection_for_read() as connection, connection.SimpleQueue(queue) as tasks:
        while True:
            try:
                message = tasks.get(timeout=0.5)
            except tasks.Empty:
                return ran
            name, args = message.headers["task"], message.payload[0]
            celery_app.tasks[name].apply(args=args, headers=message.headers)
            message.ack()
            ran.append(name)


def published_event_ids(pubsub) -> list[int]:
    """The event ids published so far (a None is also the subscription's confirmation)."""
    ids = []
    for _ in range(5):
        item = pubsub.get_message(timeout=0.2)
        if item is not None:
            ids += [event_id for event_id, _ in decode(item["data"])]
    return ids


@pytest.fixture
def live_events():
    """A subscription to the live event ids the ws processes receive."""
    pubsub = get_redis().pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(django_settings.WS_EVENTS_CHANNEL)
    yield pubsub
    pubsub.close()


def test_a_message_posted_while_the_broker_is_down_is_answered_once_it_is_back(
    client_as, channel, mimi, broker, queue, due_at_once, live_events, caplog
):
    broker.down()

    with caplog.at_level(logging.WARNING, logger="system.kernel.outbox"):
        response = post_message(client_as("messaging"), channel, key="q4-question")

    assert response.status_code == 201
    question = Message.objects.get(pk=response.json()["message_id"])
    event = EventLogEntry.objects.get(event_type="new_message")
    assert published_event_ids(live_events) == [event.event_id]  # the live publish still ran
    row = OutboxMessage.objects.get()
    assert (row.task_name, row.args) == (
        "messaging.agent_reply",
        [str(question.message_id), str(mimi.agent_id)],
    )
    [line] = [r for r in caplog.records if r.name == "system.kernel.outbox"]
    assert line.exc_info is None and "127.0.0.1" not in line.getMessage()
    assert outbox_sweep() == 0  # still down: the row stays
    assert OutboxMessage.objects.get().attempts == 1

    broker.up()
    assert outbox_sweep() == 1
    assert run_what_the_broker_holds(queue) == ["messaging.agent_reply"]

    reply = Message.objects.get(in_reply_to=question)
    assert reply.sender_id == str(mimi.agent_id)
    assert not OutboxMessage.objects.exists()


def test_a_retry_with_the_same_idempotency_key_replays_and_queues_nothing_more(
    client_as, channel, broker, queue, due_at_once
):
    client = client_as("messaging")
    broker.down()

    first = post_message(client, channel, key="once")
    again = post_message(client, channel, key="once")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Message.objects.count() == 1
    assert OutboxMessage.objects.count() == 1
    broker.up()
    assert outbox_sweep() == 1
    assert run_what_the_broker_holds(queue) == ["messaging.agent_reply"]
    assert Message.objects.filter(sender_type="agent").count() == 1


@pytest.fixture
def executives():
    types = ("ceo_mimi", "cto_alex", "cpo_agent")
    return [agent_start(agent=agent_create(name=t, type=t)) for t in types]


WORKFLOW_TASK, DEPLOY_TASK, SYSTEM_TASK, MEETING_TASK = (
    "questflow.run_workflow_step",
    "questflow.submit_deployment",
    "system.run_system_task",
    "questflow.run_meeting",
)
MEETING = {"participants": ["CTO"], "agenda": ["Q4 priorities"]}
WORKFLOW = {"steps": [{"agent": "cto_alex", "instruction": "Estimate the plugin."}]}
DEPLOYMENT = {"name": "web", "config": {"cpu": 1, "memory": "1GB", "storage": "10GB"}}


@pytest.mark.parametrize(
    ("role", "url", "body", "status", "task"),
    [
        ("agent_manager", "/api/workflows", WORKFLOW, 202, WORKFLOW_TASK),
        ("admin", "/api/deploy/akash", DEPLOYMENT, 200, DEPLOY_TASK),
        ("admin", "/api/v1/system/tasks", {"task_type": "clear_cache"}, 202, SYSTEM_TASK),
        ("agent_manager", "/api/agents/csuite/meeting?async=true", MEETING, 202, MEETING_TASK),
    ],
)
def test_work_queued_while_the_broker_is_down_runs_once_it_is_back(
    client_as, executives, broker, queue, due_at_once, role, url, body, status, task
):
    broker.down()

    response = client_as(role).post(url, body, format="json")

    assert response.status_code == status
    assert OutboxMessage.objects.get().task_name == task
    broker.up()
    assert outbox_sweep() == 1
    assert run_what_the_broker_holds(queue) == [task]
    assert not OutboxMessage.objects.exists()
    assert Workflow.objects.filter(status="completed").count() == (task == WORKFLOW_TASK)
    assert Deployment.objects.filter(status="manifest_ready").count() == (task == DEPLOY_TASK)
    assert SystemTask.objects.filter(status="succeeded").count() == (task == SYSTEM_TASK)
    assert Meeting.objects.filter(status="completed").count() == (task == MEETING_TASK)


def test_a_row_the_broker_refused_waits_for_its_backoff(client_as, channel, broker):
    broker.down()
    post_message(client_as("messaging"), channel, key="backoff")
    row = OutboxMessage.objects.get()
    OutboxMessage.objects.filter(pk=row.pk).update(due_at=timezone.now())

    sent = outbox_sweep()

    row.refresh_from_db()
    assert (sent, row.attempts) == (0, 1)
    first_retry = timedelta(seconds=2 * django_settings.OUTBOX_RETRY_SECONDS)
    assert row.due_at >= timezone.now() + first_retry - timedelta(seconds=5)
    assert outbox_sweep() == 0  # not due yet: not sent again
    assert OutboxMessage.objects.get().attempts == 1


def test_the_work_is_recorded_in_the_transaction_and_sent_when_it_commits(channel, queue):
    with transaction.atomic():
        message_post_internal(channel=channel, sender_id="user-1", content="Q4 focus?")
        recorded = list(OutboxMessage.objects.values_list("task_name", flat=True))

    assert recorded == ["messaging.agent_reply"]
    published = OutboxMessage.objects.get()  # kept until a worker starts the task
    assert published.due_at > timezone.now() + timedelta(seconds=5)
    assert run_what_the_broker_holds(queue) == ["messaging.agent_reply"]
    assert Message.objects.filter(sender_type="agent").count() == 1
    assert not OutboxMessage.objects.exists()


def test_work_the_broker_lost_after_taking_it_is_sent_again(channel, mimi, queue):
    """Redis restarted without persistence: its queue is gone, the outbox row is not."""
    question = message_post_internal(channel=channel, sender_id="user-1", content="Q4 focus?")
    get_redis().delete(queue)  # the broker's queue, lost
    assert outbox_sweep() == 0  # not due yet: the task may still be queued

    OutboxMessage.objects.update(due_at=timezone.now())  # OUTBOX_ACK_SECONDS later
    assert outbox_sweep() == 1
    assert run_what_the_broker_holds(queue) == ["messaging.agent_reply"]

    assert Message.objects.get(in_reply_to=question).sender_id == str(mimi.agent_id)
    assert not OutboxMessage.objects.exists()


def test_two_sweeps_at_once_send_each_row_once(broker, queue):
    broker.down()
    with transaction.atomic():
        for _ in range(100):
            enqueue(ping)
    OutboxMessage.objects.update(due_at=timezone.now())  # their first retry is due
    broker.up()
    start = threading.Barrier(2)

    def sweep() -> int:
        start.wait()
        try:
            return outbox_sweep()
        finally:
            connection.close()

    with ThreadPoolExecutor(2) as pool:
        sent = [f.result() for f in [pool.submit(sweep), pool.submit(sweep)]]

    assert sum(sent) == 100
    assert not OutboxMessage.objects.filter(due_at__lte=timezone.now()).exists()
    with celery_app.connection_for_read() as to_broker, to_broker.SimpleQueue(queue) as tasks:
        assert tasks.qsize() == 100
    assert run_what_the_broker_holds(queue) == ["system.ping"] * 100
    assert not OutboxMessage.objects.exists()


@shared_task(name="tests.outbox.row_while_running")
def row_while_running() -> bool:
    """Whether this task's own outbox row still exists while the task runs."""
    return OutboxMessage.objects.filter(task_name="tests.outbox.row_while_running").exists()


def test_the_row_lives_until_its_task_has_run(queue):
    """A worker killed mid-task leaves the row behind, for the sweep to send again."""
    with transaction.atomic():
        enqueue(row_while_running)

    with celery_app.connection_for_read() as connection, connection.SimpleQueue(queue) as tasks:
        message = tasks.get(timeout=5)
        result = row_while_running.apply(headers=message.headers)
        message.ack()

    assert result.get() is True  # there while it ran
    assert not OutboxMessage.objects.exists()  # gone once it had
