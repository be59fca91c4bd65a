"""Subscriptions, filters, who sees what, and every command.

"Does not receive X" is asserted without waiting for silence: a socket delivers events in id
order, so when X is emitted before a marker event the socket does receive, the first event
it gets must be the marker.
"""

import asyncio
import re
import uuid

import pytest
from channels.db import database_sync_to_async
from django.db import transaction

from agents.services import agent_create, agent_start
from messaging.models import Message
from messaging.services import channel_create
from sessions_app.services import session_create
from sessions_app.timeouts import TimeoutConfig
from system.eventlog.events import EventScope
from system.eventlog.services import event_emit
from system.models import EventLogEntry
from tests.realtime.conftest import emit

pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def bob(make_user):
    return make_user("bob", roles=("messaging",))


@pytest.fixture
def root(make_user):
    return make_user("root", roles=("admin",))


@pytest.fixture
def nobody(make_user):
    return make_user("nobody")


@pytest.fixture
def monitor(make_user):
    return make_user("monitor", roles=("system_monitor",))


@pytest.fixture
def private(alice):
    return channel_create(name="board", type="private", members=["alice"], actor=alice)


@pytest.fixture
def connect(open_socket, jwt_for):
    """await connect(user) → a socket authenticated with a JWT of that user (its roles)."""

    async def connect_(user):
        return await open_socket(token=await jwt_for(user))

    return connect_


def message_event(channel) -> dict:
    return {"channel_id": channel.channel_id, "message": {"content": "hello"}}


# --- commands -----------------------------------------------------------------------------


async def test_ping_answers_pong_echoing_the_command_id(connect, alice):
    socket = await connect(alice)

    reply = await socket.command(command="ping", id="p-1")

    assert reply["event"] == "pong"
    assert reply["id"] == "p-1"
    assert reply["data"]["server_time"]


INVALID_COMMANDS = [
    "not json",
    "[1, 2]",
    '{"no": "command"}',
    '{"command": 5}',
    '{"command": "fly"}',
    '{"command": "subscribe"}',
    '{"command": "subscribe", "event_type": "Bad Type!"}',
    '{"command": "subscribe", "event_type": "*", "filter": [1]}',
    '{"command": "subscribe", "event_type": "*", "filter": {"colour": "red"}}',
    '{"command": "subscribe", "event_type": "*", "filter": {"channel_id": "nope"}}',
    '{"command": "subscribe", "event_type": "*", "filter": {"status": 3}}',
    '{"command": "unsubscribe"}',
    '{"command": "resume"}',
    '{"command": "resume", "last_event_id": -1}',
    '{"command": "resume", "last_event_id": "x"}',
    '{"command": "send_message", "content": "hi"}',
    '{"command": "send_message", "channel_id": "x"}',
    '{"command": "auth", "token": "x"}',
    '{"command": "ping", "id": {"nested": true}}',
]


async def test_every_invalid_command_gets_invalid_command_and_the_socket_stays_open(connect, alice):
    socket = await connect(alice)

    errors = []
    for frame in INVALID_COMMANDS:
        await socket.communicator.send_to(text_data=frame)
        errors.append(await socket.receive())

    assert [(e["event"], e["data"]["code"]) for e in errors] == [
        ("error", "invalid_command")
    ] * len(INVALID_COMMANDS)
    assert all(e["data"]["message"] for e in errors)
    assert (await socket.command(command="ping"))["event"] == "pong"


async def test_a_binary_frame_gets_invalid_command(connect, alice):
    socket = await connect(alice)

    await socket.communicator.send_to(bytes_data=b'{"command": "ping"}')

    assert (await socket.receive())["data"]["code"] == "invalid_command"


async def test_subscribe_answers_with_a_subscription_id_and_resolves_the_spec_aliases(
    connect, alice
):
    socket = await connect(alice)

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


async def test_events_arrive_exactly_as_event_emit_publishes_them(connect, alice, public):
    socket = await connect(alice)
    await socket.subscribe("message")

    entry = await database_sync_to_async(emit_entry)(public)
    event = await socket.next_event()

    assert event == {
        "event": "new_message",
        "event_id": entry.event_id,
        "timestamp": entry.created_at.isoformat(),
        "data": {"channel_id": str(public.channel_id), "message": {"content": "hello"}},
    }


async def test_after_unsubscribe_the_subscriptions_events_stop(connect, alice, private, public):
    socket = await connect(alice)
    first = await socket.subscribe("message", channel_id=str(private.channel_id))
    await socket.subscribe("message", channel_id=str(public.channel_id))

    reply = await socket.command(
        command="unsubscribe", subscription_id=first["data"]["subscription_id"]
    )
    await emit("new_message", message_event(private), channel_id=private.channel_id)
    marker = await emit("new_message", message_event(public), channel_id=public.channel_id)

    assert reply["event"] == "unsubscribed"
    assert (await socket.next_event())["event_id"] == marker


async def test_unsubscribing_an_unknown_subscription_is_subscription_not_found(connect, alice):
    socket = await connect(alice)

    reply = await socket.command(command="unsubscribe", subscription_id="sub-99")

    assert reply["data"]["code"] == "subscription_not_found"


async def test_an_event_type_subscription_gets_only_that_type(connect, alice, public):
    socket = await connect(alice)
    await socket.subscribe("message")
    agent_id = uuid.uuid4()

    await emit("agent_status_update", {"agent_id": agent_id}, agent_id=agent_id)
    marker = await emit("new_message", message_event(public), channel_id=public.channel_id)

    assert (await socket.next_event())["event_id"] == marker


async def test_an_agent_filter_gets_only_that_agents_events(connect, alice):
    socket = await connect(alice)
    mine, other = uuid.uuid4(), uuid.uuid4()
    await socket.subscribe("agent_status", agent_id=str(mine))

    await emit("agent_status_update", {"status": "running"}, agent_id=other)
    marker = await emit("agent_status_update", {"status": "running"}, agent_id=mine)

    assert (await socket.next_event())["event_id"] == marker


async def test_a_status_filter_matches_the_events_status(connect, alice):
    socket = await connect(alice)
    agent_id = uuid.uuid4()
    await socket.subscribe("agent_status", agent_id=str(agent_id), status="error")

    await emit("agent_status_update", {"status": "running"}, agent_id=agent_id)
    marker = await emit("agent_status_update", {"status": "error"}, agent_id=agent_id)

    assert (await socket.next_event())["event_id"] == marker


async def test_too_many_subscriptions_are_refused(connect, alice, settings):
    settings.WS_MAX_SUBSCRIPTIONS = 2
    socket = await connect(alice)
    await socket.subscribe("message")
    await socket.subscribe("agent_status")

    reply = await socket.command(command="subscribe", event_type="*")

    assert reply["data"]["code"] == "invalid_command"


# --- who sees what ------------------------------------------------------------------------


async def test_a_member_of_a_private_channel_gets_its_messages(connect, alice, private):
    socket = await connect(alice)
    await socket.subscribe("*")

    event_id = await emit("new_message", message_event(private), channel_id=private.channel_id)

    assert (await socket.next_event())["event_id"] == event_id


async def test_an_admin_gets_every_private_channels_messages(connect, root, private):
    socket = await connect(root)
    await socket.subscribe("message")

    event_id = await emit("new_message", message_event(private), channel_id=private.channel_id)

    assert (await socket.next_event())["event_id"] == event_id


async def test_a_non_member_does_not_get_a_private_channels_messages(connect, bob, private, public):
    socket = await connect(bob)
    await socket.subscribe("*")

    await emit("new_message", message_event(private), channel_id=private.channel_id)
    marker = await emit("new_message", message_event(public), channel_id=public.channel_id)

    assert (await socket.next_event())["event_id"] == marker


async def test_a_non_member_may_not_subscribe_to_a_private_or_unknown_channel(
    connect, bob, private
):
    socket = await connect(bob)

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
    connect, alice, bob, private, public, settings
):
    settings.WS_AUTH_RECHECK_SECONDS = 0.05  # also how long channel membership is cached
    await database_sync_to_async(private.members.create)(member_id="bob", member_type="user")
    socket = await connect(bob)
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


async def test_a_sessions_owner_gets_its_events_and_not_other_sessions(connect, alice, sessions):
    socket = await connect(alice)
    await socket.subscribe("session")

    await emit("session_update", {"status": "active"}, **session_scope(sessions["bob"]))
    marker = await emit("session_update", {"status": "active"}, **session_scope(sessions["alice"]))

    assert (await socket.next_event())["event_id"] == marker


async def test_another_users_session_events_do_not_reach_a_firehose_subscriber(
    connect, alice, sessions, public
):
    socket = await connect(alice)
    await socket.subscribe("*")

    await emit("session_update", {"status": "active"}, **session_scope(sessions["bob"]))
    marker = await emit("new_message", message_event(public), channel_id=public.channel_id)

    assert (await socket.next_event())["event_id"] == marker


async def test_an_admin_gets_every_sessions_events(connect, root, sessions):
    socket = await connect(root)
    await socket.subscribe("session")

    event_id = await emit("session_update", {}, **session_scope(sessions["bob"]))

    assert (await socket.next_event())["event_id"] == event_id


async def test_the_owner_may_subscribe_to_one_session(connect, alice, sessions):
    session = sessions["alice"]
    socket = await connect(alice)
    await socket.subscribe("session", session_id=str(session.session_id))

    event_id = await emit("session_update", {"status": "ended"}, **session_scope(session))

    assert (await socket.next_event())["event_id"] == event_id


async def test_another_user_may_not_subscribe_to_a_session(connect, alice, sessions):
    socket = await connect(alice)

    reply = await socket.command(
        command="subscribe",
        event_type="session",
        filter={"session_id": str(sessions["bob"].session_id)},
    )

    assert reply["data"]["code"] == "insufficient_permissions"


async def test_a_principal_without_roles_may_not_subscribe_to_agent_events(connect, nobody):
    socket = await connect(nobody)

    reply = await socket.command(command="subscribe", event_type="agent_status")

    assert reply["data"]["code"] == "insufficient_permissions"


async def test_a_system_monitor_gets_agent_events_but_not_messages(connect, monitor, public):
    socket = await connect(monitor)
    await socket.subscribe("*")
    agent_id = uuid.uuid4()

    await emit("new_message", message_event(public), channel_id=public.channel_id)
    marker = await emit("agent_status_update", {"agent_id": agent_id}, agent_id=agent_id)

    assert (await socket.next_event())["event_id"] == marker


async def test_events_without_a_scope_reach_admins_only(connect, alice, root, public):
    member, admin = await connect(alice), await connect(root)
    await member.subscribe("*")
    await admin.subscribe("*")

    unscoped = await emit("system_notice", {"text": "maintenance"})
    marker = await emit("new_message", message_event(public), channel_id=public.channel_id)

    assert (await admin.next_event())["event_id"] == unscoped
    assert (await member.next_event())["event_id"] == marker


# --- send_message -------------------------------------------------------------------------


async def test_send_message_posts_as_the_principal_and_acks_with_the_message_id(
    connect, alice, private
):
    socket = await connect(alice)
    await socket.subscribe("message", channel_id=str(private.channel_id))

    ack = await socket.command(
        command="send_message",
        id="m1",
        channel_id=str(private.channel_id),
        content="Board meets at noon.",
        metadata={"topic": "board"},
    )
    event = await socket.next_event()

    message = await database_sync_to_async(Message.objects.get)(pk=ack["data"]["message_id"])
    assert ack["event"] == "ack"
    assert ack["id"] == "m1"
    assert (message.sender_id, message.content, message.metadata) == (
        "alice",
        "Board meets at noon.",
        {"topic": "board"},
    )
    assert event["event"] == "new_message"
    assert event["data"]["message"]["message_id"] == ack["data"]["message_id"]


async def test_send_message_to_a_channel_the_principal_cannot_see_is_channel_not_found(
    connect, bob, private
):
    socket = await connect(bob)

    reply = await socket.command(
        command="send_message", channel_id=str(private.channel_id), content="hi"
    )

    assert reply["data"]["code"] == "channel_not_found"
    assert reply["data"]["command"] == "send_message"


async def test_send_message_validates_content_as_the_rest_api_does(connect, alice, public):
    socket = await connect(alice)

    reply = await socket.command(
        command="send_message", channel_id=str(public.channel_id), content="   "
    )

    assert reply["data"]["code"] == "invalid_message_content"


async def test_send_message_needs_a_role_that_may_send(connect, monitor, public):
    socket = await connect(monitor)

    reply = await socket.command(
        command="send_message", channel_id=str(public.channel_id), content="hi"
    )

    assert reply["data"]["code"] == "insufficient_permissions"


async def test_send_message_counts_against_the_principals_rate_limit(
    connect, alice, public, settings, tmp_path, fresh_rate_window
):
    rules, replaced = re.subn(
        r"(per_role:\n(?:    \w+: \d+\n)*?    messaging: )\d+",
        r"\g<1>2",
        settings.ROUTING_RULES_PATH.read_text(),
    )
    assert replaced == 1
    settings.ROUTING_RULES_PATH = tmp_path / "rules.yaml"
    settings.ROUTING_RULES_PATH.write_text(rules)
    socket = await connect(alice)
    send = {"command": "send_message", "channel_id": str(public.channel_id), "content": "hi"}

    replies = [await socket.command(**send) for _ in range(3)]

    assert [r["event"] for r in replies] == ["ack", "ack", "error"]
    assert replies[2]["data"]["code"] == "rate_limit_exceeded"
