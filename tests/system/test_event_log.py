"""event_emit: the row in the caller's transaction, the live copy only after commit."""

import asyncio
import uuid
from datetime import timedelta

import pytest
import time_machine
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone

from system.events import EventScope
from system.models import EventLogEntry
from system.services import event_emit, event_log_prune

pytestmark = pytest.mark.embedded


class Listener:
    """Channels on the real Redis channel layer, driven from one event loop of its own: the
    layer's receive buffers belong to the loop that made them."""

    def __init__(self) -> None:
        self.layer = get_channel_layer()
        self.loop = asyncio.new_event_loop()
        self.joined: list[tuple[str, str]] = []

    def listen(self, group: str) -> str:
        channel = self.loop.run_until_complete(self.layer.new_channel())
        self.loop.run_until_complete(self.layer.group_add(group, channel))
        self.joined.append((group, channel))
        return channel

    def receive(self, channel: str, timeout: float = 2.0) -> dict | None:
        try:
            return self.loop.run_until_complete(
                asyncio.wait_for(self.layer.receive(channel), timeout)
            )
        except TimeoutError:
            return None

    def close(self) -> None:
        for group, channel in self.joined:
            self.loop.run_until_complete(self.layer.group_discard(group, channel))
        self.loop.run_until_complete(self.layer.close_pools())
        self.loop.close()


@pytest.fixture
def listener():
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
    channel = listener.listen(f"events.channel.{channel_id}")

    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        entry = event_emit(
            event_type="new_message",
            data={"channel_id": channel_id, "content": "hi"},
            scope=EventScope(channel_id=channel_id),
        )
    assert listener.receive(channel, timeout=0.3) is None  # not before commit
    for callback in callbacks:
        callback()

    message = listener.receive(channel)
    assert message["event"] == "new_message"
    assert message["event_id"] == entry.event_id
    assert message["data"] == {"channel_id": str(channel_id), "content": "hi"}
    assert message["timestamp"] == entry.created_at.isoformat()


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
    firehose = listener.listen("events")
    by_agent = listener.listen(f"events.agent.{agent_id}")
    by_session = listener.listen(f"events.session.{session_id}")
    by_owner = listener.listen("events.owner.7")

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        entry = event_emit(
            event_type="session_update",
            data={"status": "active"},
            scope=EventScope(agent_id=agent_id, session_id=session_id, owner_id=7),
        )

    for channel in (firehose, by_agent, by_session, by_owner):
        assert listener.receive(channel)["event_id"] == entry.event_id


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
