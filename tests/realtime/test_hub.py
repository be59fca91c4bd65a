"""Live events through one Redis subscription per process (system.realtime.hub): what
`publish_many` sends, one message waking every local connection concerned, batches, and the
gaps a lost message or a lost subscription leaves, filled from the log."""

import asyncio
import json
import threading
import uuid

import pytest
import redis
from channels.db import database_sync_to_async
from django.conf import settings as django_settings
from django.db import connections, transaction

from messaging.services import channel_create
from system.eventlog import events
from system.eventlog.events import EventScope
from system.eventlog.services import event_emit_many
from system.realtime.hub import client_name, hub
from tests.realtime.conftest import emit, emit_now, received_ids

pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _no_periodic_sync(settings) -> None:
    """Whatever arrives here came through the live path (or the hub's own re-sync)."""
    settings.WS_SYNC_SECONDS = 3600
    settings.WS_PING_SECONDS = 3600


def redis_client() -> redis.Redis:
    return redis.Redis.from_url(django_settings.REDIS_URL)


def kill_hub_connections() -> int:
    """Drop this process's hub connections (only ours: the Redis server may be shared)."""
    client = redis_client()
    ours = [c["id"] for c in client.client_list() if c.get("name") == client_name()]
    for client_id in ours:
        client.client_kill_filter(_id=client_id)
    return len(ours)


def emit_batch(channel, count: int) -> list[int]:
    """`count` events in ONE transaction, as the session sweep emits them."""
    try:
        with transaction.atomic():
            entries = event_emit_many(
                [
                    ("new_message", {"n": i}, EventScope(channel_id=channel.channel_id))
                    for i in range(count)
                ]
            )
        return [entry.event_id for entry in entries]
    finally:
        connections.close_all()


# --- the publishing side ----------------------------------------------------------------------


def test_publish_many_sends_ids_and_groups_in_chunks_in_id_order(settings):
    settings.WS_EVENTS_CHANNEL = f"371os:test:{uuid.uuid4().hex}:events"
    items = [(1000 + i, ["events", f"events.channel.{i % 3}"]) for i in range(1200)]
    client = redis_client()
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(settings.WS_EVENTS_CHANNEL)
    pubsub.get_message(timeout=1)  # the subscription's confirmation

    events.publish_many(items)

    messages = []
    while (message := pubsub.get_message(timeout=1)) is not None:
        messages.append(message["data"])
    pubsub.close()
    # 500 entries per message: 3 messages for 1,200, together exactly the items, in order.
    assert len(messages) == 3
    assert [item for raw in messages for item in events.decode(raw)] == items


def test_a_publish_while_redis_is_away_is_logged_not_raised(settings, caplog):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1

    events.publish_many([(1, ["events"])])

    assert "clients resume from the log" in caplog.text


def test_malformed_messages_decode_to_nothing():
    assert events.decode(b"not json") == []
    assert events.decode(b'{"event_id": 1}') == []
    assert events.decode(b'[[1, ["events"]], ["x"], [2, "events"], [3, []]]') == [
        (1, ["events"]),
        (3, []),
    ]


# --- the receiving side -----------------------------------------------------------------------


async def test_an_event_reaches_a_socket_through_the_processs_one_subscription(connect, public):
    socket = await connect()
    await socket.subscribe("message", channel_id=str(public.channel_id))
    before = hub().received

    event_id = await emit("new_message", {}, channel_id=public.channel_id)

    assert await received_ids(socket, 1) == [event_id]
    assert hub().received == before + 1


async def test_one_published_message_wakes_every_local_socket_once(
    connect, open_socket, jwt_for, make_user, public
):
    bob = await database_sync_to_async(make_user)("bob", roles=("messaging",))
    sockets = [await connect(), await connect(), await open_socket(token=await jwt_for(bob))]
    for socket in sockets:
        await socket.subscribe("message", channel_id=str(public.channel_id))
    # One of them also through a second subscription, in another group (the owner's scope
    # does not apply to messages: this one is the firehose of its visible events).
    await sockets[0].subscribe("*")
    subscribers = await asyncio.to_thread(
        lambda: redis_client().pubsub_numsub(django_settings.WS_EVENTS_CHANNEL)[0][1]
    )
    before = hub().received

    event_id = await emit("new_message", {}, channel_id=public.channel_id)

    for socket in sockets:
        assert await received_ids(socket, 1) == [event_id]
        assert await socket.nothing_pending()  # once, even when in two of its groups
    assert hub().received == before + 1
    assert subscribers == 1  # three sockets, one Redis subscription


async def test_a_batch_of_events_in_one_transaction_arrives_complete_in_order(connect, public):
    socket = await connect()
    await socket.subscribe("message", channel_id=str(public.channel_id))
    before = hub().received

    ids = await asyncio.to_thread(emit_batch, public, 1200)

    assert await received_ids(socket, 1200) == ids
    assert await socket.nothing_pending()
    assert hub().received - before <= 3  # 500 entries per message


async def test_a_lost_live_message_is_delivered_with_the_next_one(connect, public, monkeypatch):
    socket = await connect()
    await socket.subscribe("message", channel_id=str(public.channel_id))

    def emit_unpublished() -> int:
        with monkeypatch.context() as patch:
            patch.setattr(events, "publish_many", lambda items: None)
            return emit_now("new_message", {}, channel_id=public.channel_id)

    lost = await database_sync_to_async(emit_unpublished)()
    assert await socket.nothing_pending()
    live = await emit("new_message", {}, channel_id=public.channel_id)

    assert await received_ids(socket, 2) == [lost, live]
    assert await socket.nothing_pending()


async def test_events_published_while_the_subscription_was_down_arrive_when_it_is_back(
    connect, public, monkeypatch
):
    socket = await connect()
    await socket.subscribe("message", channel_id=str(public.channel_id))

    def emit_unpublished() -> int:
        with monkeypatch.context() as patch:
            patch.setattr(events, "publish_many", lambda items: None)
            return emit_now("new_message", {}, channel_id=public.channel_id)

    # Published while the hub was disconnected (so nobody heard it), then Redis drops the
    # hub's connection: re-subscribing wakes every socket up to the log's head.
    missed = await database_sync_to_async(emit_unpublished)()
    killed = await asyncio.to_thread(kill_hub_connections)

    assert killed >= 1
    assert await received_ids(socket, 1) == [missed]
    assert hub().ready.is_set()


async def test_a_wake_up_for_an_id_this_log_never_had_loses_nothing(connect, public):
    socket = await connect()
    await socket.subscribe("message", channel_id=str(public.channel_id))
    first = await emit("new_message", {}, channel_id=public.channel_id)
    assert await received_ids(socket, 1) == [first]

    # Another deployment on the same channel name, far ahead of this log.
    group = f"events.channel.{public.channel_id}"
    await asyncio.to_thread(
        lambda: redis_client().publish(
            django_settings.WS_EVENTS_CHANNEL, json.dumps([[first + 10**9, [group]]])
        )
    )
    await asyncio.sleep(0.2)
    later = [await emit("new_message", {}, channel_id=public.channel_id) for _ in range(3)]

    assert await received_ids(socket, 3) == later
    assert await socket.nothing_pending()


async def test_a_socket_busy_with_a_command_gets_the_event_after_it(connect, public):
    socket = await connect()
    await socket.subscribe("message", channel_id=str(public.channel_id))
    delivery = next(iter(hub().groups_of))

    async with delivery.turn():  # as a subscribe or resume in progress would
        event_id = await emit("new_message", {}, channel_id=public.channel_id)
        for _ in range(100):  # the hub heard it, found the socket busy, and moved on
            if delivery.pending or delivery.catch_up is not None:
                break
            await asyncio.sleep(0.01)
        assert await socket.nothing_pending()

    assert await received_ids(socket, 1) == [event_id]


async def test_the_subscription_ends_with_the_last_subscriber(connect, public):
    socket = await connect()
    await socket.subscribe("message", channel_id=str(public.channel_id))
    task = hub().task
    assert task is not None

    await socket.disconnect()
    await asyncio.sleep(0)

    assert hub().task is None
    assert hub().groups_of == {}
    await asyncio.wait([task], timeout=5)
    assert task.done()


def test_publishing_from_many_threads_at_once_is_safe(transactional_db, settings):
    settings.WS_EVENTS_CHANNEL = f"371os:test:{uuid.uuid4().hex}:events"
    client = redis_client()
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(settings.WS_EVENTS_CHANNEL)
    pubsub.get_message(timeout=1)

    def publish(start: int) -> None:
        for i in range(50):
            events.publish_many([(start + i, ["events"])])

    threads = [threading.Thread(target=publish, args=(n * 1000,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    ids = []
    while (message := pubsub.get_message(timeout=1)) is not None:
        ids += [event_id for event_id, _ in events.decode(message["data"])]
    pubsub.close()
    assert sorted(ids) == sorted(n * 1000 + i for n in range(4) for i in range(50))


# --- fan-out --------------------------------------------------------------------------------


async def test_live_events_of_a_filtered_subscription_arrive_once_in_order(connect, public, alice):
    socket = await connect()
    await socket.subscribe("message", channel_id=str(public.channel_id))
    other = await database_sync_to_async(channel_create)(
        name="other", type="public", members=[], actor=alice
    )
    ids = []
    for i in range(6):
        channel = public if i % 2 == 0 else other
        event_id = await emit("new_message", {"n": i}, channel_id=channel.channel_id)
        if channel is public:
            ids.append(event_id)
    ids.append(await emit("new_message", {"n": 6}, channel_id=public.channel_id))

    assert await received_ids(socket, len(ids)) == ids
    assert await socket.nothing_pending()


async def test_sockets_woken_together_each_get_what_they_may_see(
    connect, open_socket, jwt_for, make_user, alice, public
):
    bob = await database_sync_to_async(make_user)("bob", roles=("messaging",))
    private = await database_sync_to_async(channel_create)(
        name="private", type="private", members=["alice"], actor=alice
    )
    sockets = {
        "alice-1": await connect(),
        "alice-2": await connect(),
        "bob": await open_socket(token=await jwt_for(bob)),
    }
    for socket in sockets.values():
        await socket.subscribe("message")

    secret = await emit("new_message", {}, channel_id=private.channel_id)
    both = await asyncio.to_thread(emit_batch, private, 1)  # the one after, in one message
    marker = await emit("new_message", {}, channel_id=public.channel_id)

    assert await received_ids(sockets["alice-1"], 3) == [secret, *both, marker]
    assert await received_ids(sockets["alice-2"], 3) == [secret, *both, marker]
    assert await received_ids(sockets["bob"], 1) == [marker]
