"""The posting services, one per case: a principal's message, the same sent as itself, a
trusted internal one, and the recorded form whose caller announces it."""

import pytest

from messaging.models import Message
from messaging.services import (
    channel_create,
    message_emit,
    message_post,
    message_post_as_principal,
    message_post_internal,
    message_record,
)
from system.kernel.exceptions import PermissionDeniedError
from system.kernel.principal import Principal
from system.models import EventLogEntry

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


@pytest.fixture
def alice(make_user):
    user = make_user("alice")
    return Principal(user_id=user.pk, username="alice", roles=frozenset({"messaging"}))


@pytest.fixture
def channel(make_user, mimi):
    return channel_create(name="exec", type="public", members=["ceo_mimi"], actor=make_user("c"))


def new_message_events() -> int:
    return EventLogEntry.objects.filter(event_type="new_message").count()


def test_message_post_records_the_principal_as_poster(channel, alice):
    message = message_post(principal=alice, channel=channel, sender_id="user-1", content="hi")

    assert (message.sender_id, message.sender_type) == ("user-1", "user")
    assert message.posted_by_id == alice.user_id
    assert new_message_events() == 1


def test_message_post_as_an_agent_needs_agent_manager_or_admin(channel, alice):
    with pytest.raises(PermissionDeniedError):
        message_post(principal=alice, channel=channel, sender_id="ceo_mimi", content="hi")

    assert not Message.objects.exists()


def test_message_post_as_principal_is_a_user_even_when_its_name_is_an_agents(
    make_user, channel, mimi
):
    user = make_user("ceo_mimi")
    principal = Principal(user_id=user.pk, username="ceo_mimi", roles=frozenset({"admin"}))

    message = message_post_as_principal(principal=principal, channel=channel, content="hi")

    assert (message.sender_id, message.sender_type) == ("ceo_mimi", "user")
    assert message.posted_by_id == user.pk


def test_message_post_internal_emits_and_running_agents_answer(
    channel, mimi, eager_celery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        message = message_post_internal(channel=channel, sender_id="user-1", content="hi")

    assert (message.sender_type, message.posted_by_id) == ("user", None)
    assert Message.objects.filter(in_reply_to=message, sender_id=str(mimi.agent_id)).exists()
    assert new_message_events() == 2  # the message and the answer


def test_message_record_leaves_the_event_and_the_replies_to_its_caller(
    channel, mimi, eager_celery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        message = message_record(channel=channel, sender_id="user-1", content="hi")

    assert new_message_events() == 0
    assert not Message.objects.filter(in_reply_to=message).exists()


def test_message_emit_announces_a_recorded_message(channel):
    message = message_record(channel=channel, sender_id="user-1", content="hi")

    message_emit(message)

    event = EventLogEntry.objects.get(event_type="new_message")
    assert event.payload["message"]["message_id"] == str(message.message_id)
