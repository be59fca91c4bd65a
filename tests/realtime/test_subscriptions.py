"""Subscriptions, filters, and who sees what.

"Does not receive X" is asserted without waiting for silence: a socket delivers events in id
order, so when X is emitted before a marker event the socket does receive, the first event
it gets must be the marker.
"""

import asyncio
import uuid

import pytest
from channels.db import database_sync_to_async
from django.db import transaction

from agents.services import agent_create, agent_start
from sessions_app.services import session_create
from sessions_app.timeouts import TimeoutConfig
from system.eventlog.events import EventScope
from system.eventlog.services import event_emit
from system.kernel.timefmt import iso_z
from system.models import EventLogEntry
from tests.realtime.conftest import emit

pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]


def message_event(channel) -> dict:
    return {"channel_id": channel.channel_id, "message": {"content": "hello"}}


async def test_subscribe_answers_with_a_subscription_id_and_resolves_the_spec_aliases(
    connect_as, alice
):
    socket = await connect_as(alice)

    reply = await socket.command(command="subscribe", event_type="agent_status", id=7)

    assert reply == {
        "event": "subscribed",
        "id": 7,
        "data": {
            "subscription_id": reply["data"]["subscription_id"],
            "event_type": "agent_status_update",
            "filter": {},
        },
    }


def emit_entry(channel) -> EventLogEntry:
    with transaction.atomic():
        return event_emit(
            event_type="new_message",
            data=message_event(channel),
            scope=EventScope(channel_id=channel.channel_id),
        )


async def test_events_arrive_exactly_as_event_emit_publishes_them(connect_as, alice, public):
    socket = await connect_as(alice)
    await socket.subscribe("message")

    entry = await database_sync_to_async(emit_entry)(public)
    event = await socket.next_event()

    assert event == {
        "event": "new_message",
        "event_id": entry.event_id,
        "timestamp": iso_z(entry.created_at),
        "data": {"channel_id": str(public.channel_id), "message": {"content": "hello"}},
    }


async def test_after_unsubscribe_the_subscriptions_events_stop(connect_as, alice, private, public):
    socket = await connect_as(alice)
    first = await socket.subscribe("message", channel_id=str(private.channel_id))
    await socket.subscribe("message", channel_id=str(public.channel_id))

    reply = await socket.command(
        command="unsubscribe", subscription_id=first["data"]["subscription_id"]
    )
    await emit("new_message", message_event(private), channel_id=private.channel_id)
    marker = await emit("new_message", message_event(public), channel_id=public.channel_id)

    assert reply["event"] == "unsubscribed"
    assert (await socket.next_event())["event_id"] == marker


async def test_unsubscribing_an_unknown_subscription_is_subscription_not_found(connect_as, alice):
    socket = await connect_as(alice)

    reply = await socket.command(command="unsubscribe", subscription_id="sub-99")

    assert reply["data"]["code"] == "subscription_not_found"


async def test_an_event_type_subscription_gets_only_that_type(connect_as, alice, public):
    socket = await connect_as(alice)
    await socket.subscribe("message")
    agent_id = uuid.uuid4()

    await emit("agent_status_update", {"agent_id": agent_id}, agent_id=agent_id)
    marker = await emit("new_message", message_event(public), channel_id=public.channel_id)

    assert (await socket.next_event())["event_id"] == marker


async def test_an_agent_filter_gets_only_that_agents_events(connect_as, alice):
    socket = await connect_as(alice)
    mine, other = uuid.uuid4(), uuid.uuid4()
    await socket.subscribe("agent_status", agent_id=str(mine))

    await emit("agent_status_update", {"status": "running"}, agent_id=other)
    marker = await emit("agent_status_update", {"status": "running"}, agent_id=mine)

    assert (await socket.next_event())["event_id"] == marker


async def test_a_status_filter_matches_the_events_status(connect_as, alice):
    socket = await connect_as(alice)
    agent_id = uuid.uuid4()
    await socket.subscribe("agent_status", agent_id=str(agent_id), status="error")

    await emit("agent_status_update", {"status": "running"}, agent_id=agent_id)
    marker = await emit("agent_status_update", {"status": "error"}, agent_id=agent_id)

    assert (await socket.next_event())["event_id"] == marker


async def test_too_many_subscriptions_are_refused(connect_as, alice, settings):
    settings.WS_MAX_SUBSCRIPTIONS = 2
    socket = await connect_as(alice)
    await socket.subscribe("message")
    await socket.subscribe("agent_status")

    reply = await socket.command(command="subscribe", event_type="*")

    assert reply["data"]["code"] == "invalid_command"


# --- who sees what ------------------------------------------------------------------------


async def test_a_member_of_a_private_channel_gets_its_messages(connect_as, alice, private):
    socket = await connect_as(alice)
    await socket.subscribe("*")

    event_id = await emit("new_message", message_event(private), channel_id=private.channel_id)

    assert (await socket.next_event())["event_id"] == event_id


async def test_an_admin_gets_every_private_channels_messages(connect_as, root, private):
    socket = await connect_as(root)
    await socket.subscribe("message")

    event_id = await emit("new_message", message_event(private), channel_id=private.channel_id)

    assert (await socket.next_event())["event_id"] == event_id


async def test_a_non_member_does_not_get_a_private_channels_messages(
    connect_as, bob, private, public
):
    socket = await connect_as(bob)
    await socket.subscribe("*")

    await emit("new_message", message_event(private), channel_id=private.channel_id)
    marker = await emit("new_message", message_event(public), channel_id=public.channel_id)

    assert (await socket.next_event())["event_id"] == marker


async def test_a_non_member_may_not_subscribe_to_a_private_or_unknown_channel(
    connect_as, bob, private
):
    socket = await connect_as(bob)

    replies = [
        await socket.command(
            command="subscribe", event_type="message", filter={"channel_id": str(channel_id)}
        )
        for channel_id in (private.channel_id, uuid.uuid4())
    ]

    assert [(r["event"], r["data"]["code"]) for r in replies] == [
        ("error", "insufficient_permissions")
    ] * 2


async def test_a_member_removed_from_a_channel_stops_getting_its_messages_once_the_cache_ages(
    connect_as, alice, bob, private, public, settings
):
    settings.WS_AUTH_RECHECK_SECONDS = 0.05  # also how long channel membership is cached
    await database_sync_to_async(private.members.create)(member_id="bob", member_type="user")
    socket = await connect_as(bob)
    await socket.subscribe("*")
    while_member = await emit("new_message", message_event(private), channel_id=private.channel_id)
    assert (await socket.next_event())["event_id"] == while_member

    await database_sync_to_async(private.members.filter(member_id="bob").delete)()
    await asyncio.sleep(0.1)  # past the cache's lifetime
    await emit("new_message", message_event(private), channel_id=private.channel_id)
    marker = await emit("new_message", message_event(public), channel_id=public.channel_id)

    assert (await socket.next_event())["event_id"] == marker


@pytest.fixture
def sessions(alice, bob):
    """A session of alice's and one of bob's, with a running agent."""
    agent = agent_start(agent=agent_create(name="ceo_mimi", type="ceo_mimi"))
    config = TimeoutConfig(
        timeout_minutes=30, auto_renew=True, max_duration_minutes=720, warning_threshold_minutes=5
    )
    return {
        owner.username: session_create(
            agent=agent, user_id=owner.username, owner=owner, config=config
        )
        for owner in (alice, bob)
    }


def session_scope(session) -> dict:
    return {
        "session_id": session.session_id,
        "agent_id": session.agent_uuid,
        "owner_id": session.owner_id,
    }


async def test_a_sessions_owner_gets_its_events_and_not_other_sessions(connect_as, alice, sessions):
    socket = await connect_as(alice)
    await socket.subscribe("session")

    await emit("session_update", {"status": "active"}, **session_scope(sessions["bob"]))
    marker = await emit("session_update", {"status": "active"}, **session_scope(sessions["alice"]))

    assert (await socket.next_event())["event_id"] == marker


async def test_another_users_session_events_do_not_reach_a_firehose_subscriber(
    connect_as, alice, sessions, public
):
    socket = await connect_as(alice)
    await socket.subscribe("*")

    await emit("session_update", {"status": "active"}, **session_scope(sessions["bob"]))
    marker = await emit("new_message", message_event(public), channel_id=public.channel_id)

    assert (await socket.next_event())["event_id"] == marker


async def test_an_admin_gets_every_sessions_events(connect_as, root, sessions):
    socket = await connect_as(root)
    await socket.subscribe("session")

    event_id = await emit("session_update", {}, **session_scope(sessions["bob"]))

    assert (await socket.next_event())["event_id"] == event_id


async def test_the_owner_may_subscribe_to_one_session(connect_as, alice, sessions):
    session = sessions["alice"]
    socket = await connect_as(alice)
    await socket.subscribe("session", session_id=str(session.session_id))

    event_id = await emit("session_update", {"status": "ended"}, **session_scope(session))

    assert (await socket.next_event())["event_id"] == event_id


async def test_another_user_may_not_subscribe_to_a_session(connect_as, alice, sessions):
    socket = await connect_as(alice)

    reply = await socket.command(
        command="subscribe",
        event_type="session",
        filter={"session_id": str(sessions["bob"].session_id)},
    )

    assert reply["data"]["code"] == "insufficient_permissions"


async def test_a_principal_without_roles_may_not_subscribe_to_agent_events(connect_as, nobody):
    socket = await connect_as(nobody)

    reply = await socket.command(command="subscribe", event_type="agent_status")

    assert reply["data"]["code"] == "insufficient_permissions"


async def test_a_system_monitor_gets_agent_events_but_not_messages(connect_as, monitor, public):
    socket = await connect_as(monitor)
    await socket.subscribe("*")
    agent_id = uuid.uuid4()

    await emit("new_message", message_event(public), channel_id=public.channel_id)
    marker = await emit("agent_status_update", {"agent_id": agent_id}, agent_id=agent_id)

    assert (await socket.next_event())["event_id"] == marker


async def test_events_without_a_scope_reach_admins_only(connect_as, alice, root, public):
    member, admin = await connect_as(alice), await connect_as(root)
    await member.subscribe("*")
    await admin.subscribe("*")

    unscoped = await emit("system_notice", {"text": "maintenance"})
    marker = await emit("new_message", message_event(public), channel_id=public.channel_id)

    assert (await admin.next_event())["event_id"] == unscoped
    assert (await member.next_event())["event_id"] == marker
