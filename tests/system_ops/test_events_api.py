"""GET /api/v1/system/events: the event log as the audit log. Keyset pages by event id, each
filter, full data for admin, private content redacted for system_monitor, refused to the
other roles."""

import uuid
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from system.eventlog.events import EventScope
from system.eventlog.services import event_emit
from system.models import EventLogEntry
from system.ops.events_api import REDACTED

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

URL = "/api/v1/system/events"


def emit(event_type: str = "agent_status_update", data: dict | None = None, **scope) -> int:
    with transaction.atomic():
        return event_emit(
            event_type=event_type, data=data or {}, scope=EventScope(**scope)
        ).event_id


def ids(response) -> list[int]:
    assert response.status_code == 200, response.json()
    return [event["event_id"] for event in response.json()["events"]]


@pytest.fixture
def admin(client_as):
    return client_as("admin")


@pytest.fixture
def monitor(client_as):
    return client_as("system_monitor")


def test_without_a_cursor_pages_newest_first_and_before_continues(admin):
    emitted = [emit() for _ in range(5)]

    first = admin.get(URL, {"limit": 2}).json()
    second = admin.get(URL, {"limit": 2, "before": first["pagination"]["next_before"]}).json()
    last = admin.get(URL, {"limit": 2, "before": second["pagination"]["next_before"]}).json()

    assert [e["event_id"] for e in first["events"]] == emitted[:-3:-1]
    assert [e["event_id"] for e in second["events"]] == emitted[2:0:-1]
    assert [e["event_id"] for e in last["events"]] == emitted[:1]
    assert first["pagination"] == {
        "limit": 2,
        "has_more": True,
        "next_after": None,
        "next_before": emitted[3],
    }
    assert last["pagination"]["has_more"] is False
    assert last["pagination"]["next_before"] is None


def test_after_and_since_id_page_forward_oldest_first(admin):
    emitted = [emit() for _ in range(4)]

    page = admin.get(URL, {"after": emitted[0], "limit": 2}).json()
    same = admin.get(URL, {"since_id": emitted[0], "limit": 2}).json()
    tail = admin.get(URL, {"after": page["pagination"]["next_after"]}).json()

    assert [e["event_id"] for e in page["events"]] == emitted[1:3]
    assert same == page
    assert page["pagination"]["has_more"] is True
    assert [e["event_id"] for e in tail["events"]] == emitted[3:]
    assert tail["pagination"]["next_after"] == emitted[3]


def test_limit_defaults_to_50_and_is_capped_at_200(admin):
    emitted = [emit() for _ in range(3)]

    default = admin.get(URL, {"after": emitted[0] - 1}).json()
    capped = admin.get(URL, {"limit": 5000}).json()

    assert default["pagination"]["limit"] == 50
    assert capped["pagination"]["limit"] == 200


def test_event_type_filter_takes_one_or_more_types(admin):
    status = emit("agent_status_update")
    message = emit("new_message")
    emit("session_update")

    assert ids(admin.get(URL, {"event_type": "new_message"})) == [message]
    assert ids(admin.get(URL, {"event_type": "agent_status_update,new_message"})) == [
        message,
        status,
    ]


def test_since_and_until_filter_on_the_entry_time(admin):
    old, middle, new = emit(), emit(), emit()
    now = timezone.now()
    EventLogEntry.objects.filter(event_id=old).update(created_at=now - timedelta(hours=3))
    EventLogEntry.objects.filter(event_id=middle).update(created_at=now - timedelta(hours=2))
    since = (now - timedelta(hours=2, minutes=30)).isoformat()
    until = (now - timedelta(hours=1)).isoformat()

    assert ids(admin.get(URL, {"since": since})) == [new, middle]
    assert ids(admin.get(URL, {"until": until})) == [middle, old]
    assert ids(admin.get(URL, {"since": since, "until": until})) == [middle]


def test_agent_channel_and_session_filters_select_their_scope(admin):
    agent, channel, session = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    by_agent = emit(agent_id=agent)
    by_channel = emit(channel_id=channel)
    by_session = emit(session_id=session, agent_id=agent)

    assert ids(admin.get(URL, {"agent_id": str(agent)})) == [by_session, by_agent]
    assert ids(admin.get(URL, {"channel_id": str(channel)})) == [by_channel]
    assert ids(admin.get(URL, {"session_id": str(session)})) == [by_session]


def test_malformed_filters_answer_400_validation_error(admin):
    response = admin.get(URL, {"since": "yesterday", "agent_id": "nope", "after": "x"})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert {"since", "agent_id", "after"} <= set(response.json()["error"]["details"])


def test_an_entry_carries_its_id_type_time_scope_and_data(admin):
    channel = uuid.uuid4()
    event_id = emit("new_message", {"channel_id": channel}, channel_id=channel)

    (event,) = admin.get(URL).json()["events"]

    assert event == {
        "event_id": event_id,
        "event_type": "new_message",
        "timestamp": event["timestamp"],
        "agent_id": None,
        "channel_id": str(channel),
        "session_id": None,
        "data": {"channel_id": str(channel)},
    }


PRIVATE = {
    "channel_id": "c-1",
    "message": {"message_id": "m-1", "content": "the merger is off", "metadata": {"k": "v"}},
    "context": {"last_topic": "merger"},
    "context_update": {"turn_count": 2},
    "status": "active",
    "summary": None,
}


def test_admin_reads_private_content_in_full(admin):
    emit("new_message", PRIVATE)

    (event,) = admin.get(URL).json()["events"]

    assert event["data"] == PRIVATE


def test_system_monitor_reads_private_content_redacted(monitor):
    emit("new_message", PRIVATE)

    (event,) = monitor.get(URL).json()["events"]

    assert event["data"] == {
        "channel_id": "c-1",
        "message": {"message_id": "m-1", "content": REDACTED, "metadata": REDACTED},
        "context": REDACTED,
        "context_update": REDACTED,
        "status": "active",
        "summary": None,
    }


def test_a_posted_message_text_is_redacted_for_system_monitor(client_as, monitor):
    sender = client_as("messaging")
    channel = sender.post("/api/v1/channels", {"name": "ops", "type": "public"}, format="json")
    sender.post(
        f"/api/v1/channels/{channel.json()['channel_id']}/messages",
        {"sender_id": "user-1", "content": "confidential"},
        format="json",
    )

    events = monitor.get(URL, {"event_type": "new_message"}).json()["events"]

    assert events[0]["data"]["message"]["content"] == REDACTED
    assert "confidential" not in str(monitor.get(URL).json())


@pytest.mark.parametrize("role", ["messaging", "agent_manager"])
def test_other_roles_get_403_insufficient_permissions(client_as, role):
    response = client_as(role).get(URL)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_permissions"


def test_a_page_of_entries_is_not_n_plus_one(admin, django_assert_max_num_queries):
    for _ in range(30):
        emit("new_message", PRIVATE)

    with django_assert_max_num_queries(12):
        assert len(ids(admin.get(URL, {"limit": 30}))) == 30
