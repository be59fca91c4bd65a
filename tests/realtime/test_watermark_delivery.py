"""The live path and resume with writers committing in parallel (PostgreSQL): a ws process
told of id N never delivers it while a writer of a smaller id is in flight, delivers both in
id order when that writer commits, and, when it rolls back, delivers N by itself, with no
further event to wake it."""

import asyncio

import pytest

from system.eventlog import watermark
from system.realtime.hub import hub
from tests.eventlog.writers import (
    HeldWriter,
    emit_on_own_connection,
    emit_without_blocking,
    postgresql,
)
from tests.realtime.conftest import WAIT, received_ids

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not postgresql(), reason="writers in parallel: PostgreSQL only"),
]


@pytest.fixture(autouse=True)
def _no_periodic_sync(settings) -> None:
    """Whatever arrives came through the live path (and the hub's own watermark retries)."""
    settings.WS_SYNC_SECONDS = 3600
    settings.WS_PING_SECONDS = 3600


async def held_back_by_the_hub(received_before: int) -> None:
    """Wait until the hub handled a new live message and kept a wake-up waiting above the
    watermark (its retry task runs)."""
    live = hub()
    for _ in range(WAIT * 100):
        if live.received > received_before and live.retry is not None and live.waiting:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the hub never held a wake-up back")


async def start_held_writer(**scope) -> tuple[HeldWriter, int]:
    writer = HeldWriter(**scope)
    return writer, await asyncio.to_thread(writer.start)


async def test_an_id_committed_above_a_writer_in_flight_waits_then_both_go_in_order(
    connect, public
):
    channel = public.channel_id
    before = await asyncio.to_thread(emit_on_own_connection, channel_id=channel)
    socket = await connect()
    await socket.subscribe("*", channel_id=str(channel))
    first, a_id = await start_held_writer(event_type="session_update", channel_id=channel)
    try:
        received = hub().received
        b_id = await asyncio.to_thread(emit_without_blocking, channel_id=channel)
        assert a_id < b_id
        await held_back_by_the_hub(received)
        assert await socket.nothing_pending()
        assert await asyncio.to_thread(watermark.read) < a_id

        # A client resuming meanwhile gets nothing past the watermark either.
        other = await connect(last_event_id=before)
        await other.subscribe("*", channel_id=str(channel))
        assert await other.nothing_pending()
    finally:
        await asyncio.to_thread(first.end, commit=True)

    assert await received_ids(socket, 2) == [a_id, b_id]
    assert await received_ids(other, 2) == [a_id, b_id]
    assert await socket.nothing_pending()


async def test_after_the_writer_in_flight_rolls_back_the_later_id_goes_with_no_new_event(
    connect, public
):
    channel = public.channel_id
    socket = await connect()
    await socket.subscribe("*", channel_id=str(channel))
    first, a_id = await start_held_writer(channel_id=channel)
    try:
        received = hub().received
        b_id = await asyncio.to_thread(emit_without_blocking, channel_id=channel)
        await held_back_by_the_hub(received)
        assert await socket.nothing_pending()
    finally:
        await asyncio.to_thread(first.end, commit=False)

    received = hub().received
    # Nothing else is emitted: the hub's retry finds the watermark past b_id by itself.
    event = await socket.next_event()
    assert event["event_id"] == b_id
    assert hub().received == received  # no live message woke it
    assert await socket.nothing_pending()
    assert a_id < b_id


async def test_resume_while_a_writer_is_in_flight_replays_only_below_it(connect, public):
    channel = public.channel_id
    before = await asyncio.to_thread(emit_on_own_connection, channel_id=channel)
    socket = await connect()
    await socket.subscribe("*", channel_id=str(channel))
    first, a_id = await start_held_writer(channel_id=channel)
    try:
        b_id = await asyncio.to_thread(emit_without_blocking, channel_id=channel)
        reply = await socket.command(command="resume", last_event_id=before - 1)
        assert reply["event"] == "resumed", reply
        assert reply["data"]["replayed"] == 1
        assert reply["data"]["last_event_id"] < a_id
    finally:
        await asyncio.to_thread(first.end, commit=True)
    # `before` went out with the replay (before the reply); the others once A committed.
    assert await received_ids(socket, 2) == [a_id, b_id]
