"""Agents answering agents is a channel setting that only admin and agent_manager turn on;
a message's metadata enables nothing."""

import pytest
from django.contrib.auth.models import Permission

from agents.services import agent_create, agent_start
from messaging.models import Channel, Message

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

URL = "/api/v1/channels"


@pytest.fixture
def executives():
    return [
        agent_start(agent=agent_create(name=name, type=name)) for name in ("ceo_mimi", "cfo_cash")
    ]


def test_a_messaging_caller_cannot_turn_on_agent_replies_on_a_channel(client_as):
    response = client_as("messaging").post(
        URL, {"name": "ops", "type": "public", "agent_replies_enabled": True}, format="json"
    )

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_permissions"
    assert not Channel.objects.exists()


@pytest.mark.parametrize("role", ["admin", "agent_manager"])
def test_admin_and_agent_manager_turn_on_agent_replies(client_as, role):
    client = client_as(role)
    created = client.post(
        URL, {"name": "ops", "type": "public", "agent_replies_enabled": True}, format="json"
    )

    assert created.status_code == 201
    detail = client.get(f"{URL}/{created.json()['channel_id']}").json()
    assert detail["agent_replies_enabled"] is True


def test_a_non_boolean_setting_is_a_400_naming_it(client_as):
    response = client_as("agent_manager").post(
        URL, {"name": "ops", "type": "public", "agent_replies_enabled": "yes"}, format="json"
    )

    assert response.status_code == 400
    assert "agent_replies_enabled" in response.json()["error"]["details"]


def test_message_metadata_does_not_turn_on_agent_replies(
    client_as, executives, eager_celery, django_capture_on_commit_callbacks
):
    client = client_as("messaging")
    channel_id = client.post(
        URL, {"name": "ops", "type": "public", "members": ["ceo_mimi", "cfo_cash"]}, format="json"
    ).json()["channel_id"]

    with django_capture_on_commit_callbacks(execute=True):
        posted = client.post(
            f"{URL}/{channel_id}/messages",
            {
                "sender_id": "user-1",
                "content": "Argue it out between you.",
                "metadata": {"allow_agent_replies": True},
            },
            format="json",
        )

    assert posted.status_code == 201
    replies = Message.objects.filter(sender_type="agent")
    assert replies.count() == 2
    assert set(replies.values_list("reply_depth", flat=True)) == {1}


def _admin_change(client, channel: Channel, **fields):
    return client.post(
        f"/admin/messaging/channel/{channel.pk}/change/",
        {
            "name": channel.name,
            "type": channel.type,
            "members-TOTAL_FORMS": "0",
            "members-INITIAL_FORMS": "0",
            **fields,
        },
    )


def test_staff_without_the_roles_cannot_turn_on_agent_replies_in_admin(client, make_user):
    staff = make_user("clerk", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__endswith="_channel"))
    client.force_login(staff)
    channel = Channel.objects.create(name="ops", type="public")

    response = _admin_change(client, channel, agent_replies_enabled="on")

    assert response.status_code == 200  # the form again, with the error
    assert "agent_manager" in response.content.decode()
    channel.refresh_from_db()
    assert channel.agent_replies_enabled is False


def test_an_agent_manager_turns_on_agent_replies_in_admin(client, make_user):
    manager = make_user("mgr", roles=("agent_manager",), is_staff=True)
    manager.user_permissions.add(*Permission.objects.filter(codename__endswith="_channel"))
    client.force_login(manager)
    channel = Channel.objects.create(name="ops", type="public")

    response = _admin_change(client, channel, agent_replies_enabled="on")

    assert response.status_code == 302
    channel.refresh_from_db()
    assert channel.agent_replies_enabled is True
