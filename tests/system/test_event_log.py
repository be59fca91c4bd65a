"""event_emit: the row in the caller's transaction, the live wake-up only after commit."""

import uuid
from datetime import timedelta

import pytest
import redis
import time_machine
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from system.eventlog import events
from system.eventlog.events import EventScope
from system.eventlog.services import event_emit, event_log_prune
from system.models import EventLogEntry

pytestmark = pytest.mark.embedded


class Listener:
    """The live-events pub/sub channel (what every ws process subscribes to), on a channel
    name of this test's own."""

    def __init__(self) -> None:
        self.client = redis.Redis.from_url(settings.REDIS_URL)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(settings.WS_EVENTS_CHANNEL)
        self.pubsub.get_message(timeout=1)  # the subscription's confirmation

    def receive(self, timeout: float = 2.0) -> list[tuple[int, list[str]]] | None:
        message = self.pubsub.get_message(timeout=timeout)
        return None if message is None else events.decode(message["data"])

    def close(self) -> None:
        self.pubsub.close()
        self.client.close()


@pytest.fixture
def listener(settings):
    settings.WS_EVENTS_CHANNEL = f"371os:test:{uuid.uuid4().hex}:events"
    listener = Listener()
    yield listener
    listener.close()


def test_event_emit_outside_a_transaction_is_refused(transactional_db):
    with pytest.raises(RuntimeError, match=r"transaction\.atomic"):
        event_emit(event_type="agent_status_update", data={})


def test_event_emit_publishes_only_when_the_transaction_commits(
    db, django_capture_on_commit_callbacks, listener
):
    channel_id = uuid.uuid4()

    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        entry = event_emit(
            event_type="new_message",
            data={"channel_id": channel_id, "content": "hi"},
            scope=EventScope(channel_id=channel_id),
        )
    assert listener.receive(timeout=0.3) is None  # not before commit
    for callback in callbacks:
        callback()

    # Only the id and its groups travel: connections read the entry from the log.
    assert listener.receive() == [(entry.event_id, ["events", f"events.channel.{channel_id}"])]


def test_event_emit_in_a_rolled_back_transaction_leaves_no_row_and_publishes_nothing(
    db, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks() as callbacks,
        pytest.raises(ValueError),
        transaction.atomic(),
    ):
        event_emit(event_type="agent_status_update", data={"status": "running"})
        raise ValueError("the change failed")

    assert callbacks == []
    assert not EventLogEntry.objects.exists()


def test_event_goes_to_the_firehose_and_to_every_scope_group(
    db, django_capture_on_commit_callbacks, listener
):
    agent_id, session_id = uuid.uuid4(), uuid.uuid4()

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        entry = event_emit(
            event_type="session_update",
            data={"status": "active"},
            scope=EventScope(agent_id=agent_id, session_id=session_id, owner_id=7),
        )

    assert listener.receive() == [
        (
            entry.event_id,
            [
                "events",
                f"events.agent.{agent_id}",
                f"events.session.{session_id}",
                "events.owner.7",
            ],
        )
    ]


def test_event_scope_is_stored_for_filtering(db):
    agent_id = uuid.uuid4()
    with transaction.atomic():
        entry = event_emit(
            event_type="agent_status_update",
            data={"agent_id": agent_id},
            scope=EventScope(agent_id=agent_id, owner_id=3),
        )

    stored = EventLogEntry.objects.get(pk=entry.event_id)
    assert (stored.agent_id, stored.owner_id, stored.channel_id) == (agent_id, 3, None)
    assert stored.payload == {"agent_id": str(agent_id)}


def test_prune_deletes_only_entries_older_than_the_retention(db):
    with time_machine.travel(timezone.now() - timedelta(days=4)), transaction.atomic():
        event_emit(event_type="old", data={})
    with transaction.atomic():
        recent = event_emit(event_type="recent", data={})

    deleted = event_log_prune(older_than=timedelta(hours=72), batch_size=1)

    assert deleted == 1
    assert list(EventLogEntry.objects.values_list("event_id", flat=True)) == [recent.event_id]
