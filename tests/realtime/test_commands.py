"""Commands other than subscribing: ping, malformed commands, and send_message, which goes
through the same checks and service as the REST API."""

import re

import pytest
from channels.db import database_sync_to_async

from messaging.models import Message

pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]


# --- commands -----------------------------------------------------------------------------


async def test_ping_answers_pong_echoing_the_command_id(connect_as, alice):
    socket = await connect_as(alice)

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


async def test_every_invalid_command_gets_invalid_command_and_the_socket_stays_open(
    connect_as, alice
):
    socket = await connect_as(alice)

    errors = []
    for frame in INVALID_COMMANDS:
        await socket.communicator.send_to(text_data=frame)
        errors.append(await socket.receive())

    assert [(e["event"], e["data"]["code"]) for e in errors] == [
        ("error", "invalid_command")
    ] * len(INVALID_COMMANDS)
    assert all(e["data"]["message"] for e in errors)
    assert (await socket.command(command="ping"))["event"] == "pong"


async def test_a_binary_frame_gets_invalid_command(connect_as, alice):
    socket = await connect_as(alice)

    await socket.communicator.send_to(bytes_data=b'{"command": "ping"}')

    assert (await socket.receive())["data"] == {
        "code": "invalid_command",
        "message": "Commands are JSON text frames.",
        "details": {},
    }


async def test_an_empty_text_frame_is_not_valid_json(connect_as, alice):
    socket = await connect_as(alice)

    # send_to refuses an empty text: the ASGI message as a server would pass it on.
    await socket.communicator.send_input({"type": "websocket.receive", "text": ""})

    assert (await socket.receive())["data"] == {
        "code": "invalid_command",
        "message": "The frame is not valid JSON.",
        "details": {},
    }


# --- send_message -------------------------------------------------------------------------


async def test_send_message_posts_as_the_principal_and_acks_with_the_message_id(
    connect_as, alice, private
):
    socket = await connect_as(alice)
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
    connect_as, bob, private
):
    socket = await connect_as(bob)

    reply = await socket.command(
        command="send_message", channel_id=str(private.channel_id), content="hi"
    )

    assert reply["data"]["code"] == "channel_not_found"
    assert reply["data"]["command"] == "send_message"


async def test_send_message_validates_content_as_the_rest_api_does(connect_as, alice, public):
    socket = await connect_as(alice)

    reply = await socket.command(
        command="send_message", channel_id=str(public.channel_id), content="   "
    )

    assert reply["data"]["code"] == "invalid_message_content"


async def test_send_message_needs_a_role_that_may_send(connect_as, monitor, public):
    socket = await connect_as(monitor)

    reply = await socket.command(
        command="send_message", channel_id=str(public.channel_id), content="hi"
    )

    assert reply["data"]["code"] == "insufficient_permissions"


async def test_send_message_counts_against_the_principals_rate_limit(
    connect_as, alice, public, settings, tmp_path, fresh_rate_window
):
    rules, replaced = re.subn(
        r"(per_role:\n(?:    \w+: \d+\n)*?    messaging: )\d+",
        r"\g<1>2",
        settings.ROUTING_RULES_PATH.read_text(),
    )
    assert replaced == 1
    settings.ROUTING_RULES_PATH = tmp_path / "rules.yaml"
    settings.ROUTING_RULES_PATH.write_text(rules)
    socket = await connect_as(alice)
    send = {"command": "send_message", "channel_id": str(public.channel_id), "content": "hi"}

    replies = [await socket.command(**send) for _ in range(3)]

    assert [r["event"] for r in replies] == ["ack", "ack", "error"]
    assert replies[2]["data"]["code"] == "rate_limit_exceeded"
