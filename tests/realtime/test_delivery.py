"""Lossless delivery: resume from an event id, gaps left by the live path filled from the log,
and a client that reconnects at random points while 10,000 events are produced."""

import asyncio
import random
import threading
import uuid
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.conf import settings as django_settings
from django.db import connection, connections, transaction
from django.utils import timezone

from messaging.services import channel_create
from system.eventlog import events
from system.eventlog.events import EventScope
from system.eventlog.services import event_emit_many, event_log_prune
from system.models import EventLogEntry
from tests.realtime.conftest import emit, emit_now, received_ids

pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]


def said(channel, n: int) -> list[int]:
    """n messages' worth of events in a channel, each in its own transaction."""
    return [emit_now("new_message", {"n": i}, channel_id=channel.channel_id) for i in range(n)]


# --- resume ------------------------------------------------------------------------------


async def test_last_event_id_on_connect_replays_what_was_missed_then_goes_live(connect, public):
    missed = await database_sync_to_async(said)(public, 4)
    socket = await connect(last_event_id=missed[0])
    await socket.subscribe("*")

    live = await emit("new_message", {}, channel_id=public.channel_id)

    assert await received_ids(socket, 4) == [*missed[1:], live]


async def test_the_resume_command_replays_for_the_current_subscriptions(connect, public):
    missed = await database_sync_to_async(said)(public, 3)
    socket = await connect()
    await socket.subscribe("message")

    await socket.send(command="resume", last_event_id=missed[0], id="r")
    replayed = await received_ids(socket, 2)
    reply = await socket.receive()

    assert replayed == missed[1:]
    assert reply == {
        "event": "resumed",
        "id": "r",
        "data": {"from_event_id": missed[0], "replayed": 2, "last_event_id": missed[2]},
    }


async def test_resume_before_subscribing_replays_with_the_first_subscription(connect, public):
    missed = await database_sync_to_async(said)(public, 3)
    socket = await connect()

    reply = await socket.command(command="resume", last_event_id=missed[0])
    await socket.subscribe("message", channel_id=str(public.channel_id))

    assert reply["data"]["replayed"] == 0
    assert await received_ids(socket, 2) == missed[1:]


async def test_a_resume_that_rewinds_sends_nothing_twice(connect, public):
    socket = await connect()
    await socket.subscribe("*")
    first = await emit("new_message", {}, channel_id=public.channel_id)
    assert await received_ids(socket, 1) == [first]

    reply = await socket.command(command="resume", last_event_id=first - 1)
    marker = await emit("new_message", {}, channel_id=public.channel_id)

    assert reply["data"]["replayed"] == 0
    assert await received_ids(socket, 1) == [marker]


async def test_resuming_from_before_the_retention_window_asks_for_a_resync(connect, public):
    old = await database_sync_to_async(said)(public, 3)
    await database_sync_to_async(
        lambda: EventLogEntry.objects.filter(event_id__in=old[:2]).update(
            created_at=timezone.now() - timedelta(hours=48)
        )
    )()
    await database_sync_to_async(event_log_prune)(older_than=django_settings.EVENT_LOG_RETENTION)

    socket = await connect(last_event_id=old[0])
    message = await socket.receive()

    assert message == {
        "event": "resync_required",
        "data": {
            "requested_event_id": old[0],
            "oldest_event_id": old[2],
            "last_event_id": old[2],
            "reason": "events_pruned",
            "max_replay_events": django_settings.WS_REPLAY_MAX_EVENTS,
        },
    }


async def test_resuming_just_before_the_oldest_retained_event_needs_no_resync(connect, public):
    old = await database_sync_to_async(said)(public, 3)
    await database_sync_to_async(EventLogEntry.objects.filter(event_id=old[0]).delete)()
    socket = await connect()
    await socket.subscribe("*")

    reply = await socket.command(command="resume", last_event_id=old[0])

    assert reply["event"] == "resumed"
    assert reply["data"]["replayed"] == 2


async def test_an_event_id_the_log_never_reached_asks_for_a_resync(connect, public):
    newest = await emit("new_message", {}, channel_id=public.channel_id)
    socket = await connect()

    reply = await socket.command(command="resume", last_event_id=newest + 1000)

    assert reply["event"] == "resync_required"


# --- cost ---------------------------------------------------------------------------------


@pytest.fixture
async def consumer_queries() -> list[str]:
    """The SQL the consumers run (in asgiref's one sync thread), from now on."""
    statements: list[str] = []

    def record(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    def install() -> None:
        connection.execute_wrappers.append(record)

    def remove() -> None:
        connection.execute_wrappers.remove(record)

    await database_sync_to_async(install)()
    yield statements
    await database_sync_to_async(remove)()


def emit_and_close(channel) -> int:
    try:
        return emit_now("new_message", {}, channel_id=channel.channel_id)
    finally:
        connections.close_all()


async def test_one_event_for_many_sockets_costs_a_few_queries_not_one_per_socket(
    open_socket, jwt_for, make_user, alice, consumer_queries
):
    make = database_sync_to_async(make_user)
    members = [alice, *[await make(f"m{i}", roles=("messaging",)) for i in range(4)]]
    team = await database_sync_to_async(channel_create)(
        name="team", type="private", members=[m.username for m in members], actor=alice
    )
    sockets = [await open_socket(token=await jwt_for(m)) for m in members for _ in range(6)]
    for socket in sockets:
        await socket.subscribe("*")
    consumer_queries.clear()

    # Emitted from another thread, so that only the consumers' queries are counted.
    event_id = await sync_to_async(emit_and_close, thread_sensitive=False)(team)
    received = [await socket.next_event() for socket in sockets]

    assert [e["event_id"] for e in received] == [event_id] * 30
    # The window's read of the new entry, and the channel's type and members: once each,
    # whatever the number of sockets (3 on a quiet database; a writer in flight elsewhere, a
    # live stack's beat in the same test run, makes the hub re-read the watermark a few
    # times more: per process, still never per socket).
    assert len(consumer_queries) < len(sockets) // 3, consumer_queries


# --- gaps in the live path ----------------------------------------------------------------


@pytest.fixture
def unpublished(monkeypatch):
    """Run a callable with the live publish dropped, as a Redis outage would."""

    def run(function, *args, **kwargs):
        with monkeypatch.context() as patch:
            patch.setattr(events, "publish_many", lambda items: None)
            return function(*args, **kwargs)

    return database_sync_to_async(run)


async def test_an_event_the_live_path_dropped_arrives_before_the_next_one(
    connect, public, unpublished, settings
):
    settings.WS_SYNC_SECONDS = 3600  # only the next live event can reveal the gap
    socket = await connect()
    await socket.subscribe("message", channel_id=str(public.channel_id))

    dropped = await unpublished(emit_now, "new_message", {}, channel_id=public.channel_id)
    live = await emit("new_message", {}, channel_id=public.channel_id)

    assert await received_ids(socket, 2) == [dropped, live]


async def test_a_dropped_last_event_is_delivered_by_the_periodic_sync(
    connect, public, unpublished, settings
):
    settings.WS_SYNC_SECONDS = 0.1
    socket = await connect()
    await socket.subscribe("message")

    dropped = await unpublished(emit_now, "new_message", {}, channel_id=public.channel_id)

    assert await received_ids(socket, 1) == [dropped]


def produce_in_thread(channel, count: int) -> list[int]:
    """Emit from a plain thread (its own event loop for publishing) and wait for it."""
    ids: list[int] = []

    def run() -> None:
        try:
            ids.extend(said(channel, count))
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return ids


async def test_a_consumer_whose_event_loop_stalled_loses_nothing(connect, public, settings):
    settings.WS_SYNC_SECONDS = 3600  # the live path alone must deliver
    socket = await connect()
    await socket.subscribe("message", channel_id=str(public.channel_id))

    # Blocking the event loop stalls the hub: 120 messages wait in its connection.
    stalled = produce_in_thread(public, 120)
    live = await emit("new_message", {}, channel_id=public.channel_id)

    assert await received_ids(socket, 121) == [*stalled, live]
    assert await socket.nothing_pending()


# --- 10,000 events, random reconnects -----------------------------------------------------


@pytest.fixture
def world(alice, make_user, public):
    """Every kind of scope, and whether alice (messaging, member of `mine`) may see it."""
    bob = make_user("bob", roles=("messaging",))
    mine = channel_create(name="mine", type="private", members=["alice"], actor=alice)
    theirs = channel_create(name="theirs", type="private", members=["bob"], actor=bob)
    agent_id = uuid.uuid4()
    return [
        # (weight, scope, alice may see it)
        (3, EventScope(), False),
        (3, EventScope(channel_id=public.channel_id), True),
        (2, EventScope(channel_id=mine.channel_id), True),
        (2, EventScope(channel_id=theirs.channel_id), False),
        (2, EventScope(agent_id=agent_id), True),
        (1, EventScope(session_id=uuid.uuid4(), agent_id=agent_id, owner_id=alice.pk), True),
        (1, EventScope(session_id=uuid.uuid4(), agent_id=agent_id, owner_id=bob.pk), False),
    ]


def produce(plan: list[tuple[EventScope, bool]], progress: list[int], seed: int) -> list[int]:
    """Emit the plan in transactions of 1 to 200 events; returns the ids alice may see."""
    rng = random.Random(seed)
    visible: list[int] = []
    try:
        position = 0
        while position < len(plan):
            batch = plan[position : position + rng.randint(1, 200)]
            with transaction.atomic():
                entries = event_emit_many(
                    [("tick", {"n": position + i}, scope) for i, (scope, _) in enumerate(batch)]
                )
            visible += [e.event_id for e, (_, ok) in zip(entries, batch, strict=True) if ok]
            position += len(batch)
            progress[seed] = position
    finally:
        connections.close_all()
    return visible


def produce_elsewhere(plan: list[tuple[EventScope, bool]], progress: list[int], seed: int):
    """`produce` in a thread of its own, which publishes as the api and worker processes do,
    leaving the test's loop to the consumers."""
    return asyncio.run(sync_to_async(produce, thread_sensitive=False)(plan, progress, seed))


async def test_a_client_reconnecting_at_random_points_gets_every_event_once_in_order(
    connect, world, settings
):
    settings.WS_LOG_WINDOW = 600  # small, so that long absences replay from the database
    settings.WS_PING_SECONDS = 3600  # only logged events on the wire
    rng = random.Random(371)
    weights = [weight for weight, _, _ in world]
    plan = [(scope, ok) for _, scope, ok in rng.choices(world, weights=weights, k=10_000)]
    progress = [0, 0]
    socket = await connect()
    await socket.subscribe("*")
    # Two concurrent writers: ids commit in order, but their live copies may arrive out of it.
    producers = asyncio.gather(
        *(asyncio.to_thread(produce_elsewhere, plan[i::2], progress, i) for i in (0, 1))
    )

    received: list[int] = []
    expected: list[int] | None = None
    last_seen = socket.hello["data"]["last_event_id"]
    reconnects = 0
    while expected is None or received[-1:] != expected[-1:]:
        if producers.done() and expected is None:
            expected = sorted(id_ for ids in producers.result() for id_ in ids)
            continue
        if expected is None and await socket.communicator.receive_nothing(timeout=0.2):
            continue  # nothing yet: look at the producers again (a timeout would end the app)
        message = await socket.next_event()
        assert "event_id" in message, message
        received.append(message["event_id"])
        last_seen = message["event_id"]
        if rng.random() < 0.004:
            # Away for a while: the producers move on by up to 1,500 events.
            await socket.disconnect()
            target = min(sum(progress) + rng.randint(0, 1500), len(plan))
            while sum(progress) < target and not producers.done():
                await asyncio.sleep(0.005)
            socket = await connect(last_event_id=last_seen)
            await socket.subscribe("*")
            reconnects += 1

    assert reconnects > 10
    assert received == expected
