"""`Delivery` without sockets: what goes out through its `send`, and where its cursor ends.

The tests play the hub: nothing is published (live pub/sub is test_hub's business), and a test
wakes a delivery as the hub does, by bringing the log window up to an id and calling `live`.
"""

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async

from messaging.services import channel_create
from system.eventlog import events
from system.models import EventLogEntry
from system.realtime.access import Access, grants_for
from system.realtime.auth import principal_authenticate
from system.realtime.delivery import Delivery, SubscriptionNotFound
from system.realtime.hub import hub
from system.realtime.log import LogWindow, log_bounds
from system.realtime.subscriptions import subscription_parse
from tests.realtime.conftest import emit, emit_now

pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]

SUBSCRIBED = "subscribed"


@pytest.fixture(autouse=True)
def _nothing_published(monkeypatch) -> None:
    """Events are logged but never published: only the test wakes its deliveries."""
    monkeypatch.setattr(events, "publish_many", lambda items: None)


class Client:
    """One delivery and everything it sent (a subscription's confirmation as SUBSCRIBED)."""

    def __init__(self, delivery: Delivery, frames: list[str]) -> None:
        self.delivery = delivery
        self.frames = frames

    def seen(self) -> list[int | str]:
        """Each frame's event id, or its event name when it has none."""
        messages = [json.loads(frame) for frame in self.frames]
        return [message.get("event_id", message["event"]) for message in messages]

    async def subscribe(self, event_type: str = "*", **filters: Any) -> None:
        count = len(self.delivery.subscriptions) + 1
        subscription = subscription_parse(
            subscription_id=f"sub-{count}", command={"event_type": event_type, "filter": filters}
        )

        async def confirm() -> None:
            self.frames.append(json.dumps({"event": SUBSCRIBED}))

        await self.delivery.subscribe(subscription, confirm=confirm)

    async def wake_now(self, upto: int) -> None:
        """What the hub does for a live message: the window up to `upto`, then the wake-up."""
        await self.delivery.window.cover(upto)
        await self.delivery.live(upto)

    async def wake(self, upto: int) -> None:
        """`wake_now`, then the catch-up task the delivery may have handed it to (its cursor
        behind the window, say, after earlier tests left the ids high and the log empty)."""
        await self.wake_now(upto)
        if self.delivery.catch_up is not None:
            await self.delivery.catch_up

    async def resume(self, last_event_id: int) -> int | None:
        oldest, newest = await database_sync_to_async(log_bounds)()
        return await self.delivery.resume(last_event_id, oldest=oldest, newest=newest)


@pytest.fixture
async def open_client(jwt_for) -> AsyncIterator[Callable[..., Any]]:
    """await open_client(user, window=...) → a Client whose cursor is at the log head, with
    the access the user's JWT gives; every delivery is closed after the test."""
    deliveries: list[Delivery] = []

    async def open_(user, *, window: LogWindow | None = None) -> Client:
        principal = await database_sync_to_async(principal_authenticate)(token=await jwt_for(user))
        grants = await database_sync_to_async(grants_for)(principal)
        _, newest = await database_sync_to_async(log_bounds)()
        frames: list[str] = []
        window = window or LogWindow(size=100)

        async def send(text: str) -> None:
            frames.append(text)

        delivery = Delivery(
            send=send,
            access=Access(principal, grants, ttl=30),
            window=window,
            hub=hub(),
            cursor=window.head(newest),  # as the consumer does
            name=user.username,
        )
        deliveries.append(delivery)
        return Client(delivery, frames)

    yield open_
    for delivery in deliveries:
        delivery.close()


def said(channel, count: int) -> list[int]:
    return [emit_now("new_message", {"n": i}, channel_id=channel.channel_id) for i in range(count)]


async def test_events_after_the_cursor_go_out_in_order_exactly_once(open_client, alice, public):
    client = await open_client(alice)
    await client.subscribe("*")
    ids = await database_sync_to_async(said)(public, 3)

    await client.wake(ids[0])
    await client.wake(ids[2])
    await client.wake(ids[2])

    assert client.seen() == [SUBSCRIBED, *ids]
    assert client.delivery.cursor == ids[2]


async def test_events_from_before_the_subscription_are_not_sent(open_client, alice, public):
    before = await database_sync_to_async(said)(public, 2)
    client = await open_client(alice)
    await client.subscribe("*")

    await client.wake(before[-1])

    assert client.seen() == [SUBSCRIBED]


async def test_a_subscription_after_the_log_was_emptied_gets_nothing_the_window_held(
    open_client, alice, bob, public
):
    window = LogWindow(size=100)
    first = await open_client(alice, window=window)
    await first.subscribe("*")
    ids = await database_sync_to_async(said)(public, 2)
    await first.wake(ids[-1])
    await database_sync_to_async(lambda: EventLogEntry.objects.all().delete())()  # all pruned

    second = await open_client(bob, window=window)
    await second.subscribe("*")
    await second.wake(ids[-1])

    assert second.seen() == [SUBSCRIBED]
    assert second.delivery.cursor == ids[-1]


async def test_a_resume_that_rewinds_does_not_resend_recently_sent_ids(open_client, alice, public):
    client = await open_client(alice)
    await client.subscribe("*")
    ids = await database_sync_to_async(said)(public, 2)
    await client.wake(ids[-1])

    replayed = await client.resume(ids[0] - 1)

    assert replayed == 0
    assert client.seen() == [SUBSCRIBED, *ids]


async def test_a_resume_replays_what_came_after_its_id(open_client, alice, public):
    missed = await database_sync_to_async(said)(public, 3)
    client = await open_client(alice)
    await client.subscribe("*")

    replayed = await client.resume(missed[0])

    assert replayed == 2
    assert client.seen() == [SUBSCRIBED, *missed[1:]]


async def test_a_resume_before_any_subscription_replays_once_the_first_is_confirmed(
    open_client, alice, public
):
    missed = await database_sync_to_async(said)(public, 3)
    client = await open_client(alice)
    await client.resume(missed[0])

    await client.subscribe("message")

    assert client.seen() == [SUBSCRIBED, *missed[1:]]


async def test_a_resume_from_pruned_history_asks_for_a_resync_and_moves_to_the_head(
    open_client, alice, public
):
    newest = await emit("new_message", {}, channel_id=public.channel_id)
    client = await open_client(alice)
    await client.subscribe("*")

    outcome = await client.resume(newest + 1000)

    assert outcome is None
    assert client.delivery.cursor == newest


async def test_a_wake_up_beyond_the_window_replays_from_the_log(open_client, alice, public):
    client = await open_client(alice, window=LogWindow(size=5))
    await client.subscribe("message")
    ids = await database_sync_to_async(said)(public, 20)

    await client.wake(ids[-1])  # behind the window: its catch-up task reads the log

    assert client.seen() == [SUBSCRIBED, *ids]
    assert client.delivery.window.start > ids[0]


async def test_an_event_the_principal_may_not_see_is_skipped_but_the_cursor_moves_past_it(
    open_client, alice, make_user
):
    bob = await database_sync_to_async(make_user)("bob", roles=("messaging",))
    theirs = await database_sync_to_async(channel_create)(
        name="theirs", type="private", members=["bob"], actor=bob
    )
    client = await open_client(alice)
    await client.subscribe("*")
    hidden = await emit("new_message", {}, channel_id=theirs.channel_id)

    await client.wake(hidden)

    assert client.seen() == [SUBSCRIBED]
    assert client.delivery.cursor == hidden


async def test_an_event_no_subscription_matches_is_skipped_but_the_cursor_moves_past_it(
    open_client, alice, public
):
    client = await open_client(alice)
    await client.subscribe("agent_status")
    unmatched = await emit("new_message", {}, channel_id=public.channel_id)

    await client.wake(unmatched)

    assert client.seen() == [SUBSCRIBED]
    assert client.delivery.cursor == unmatched


async def test_a_wake_up_while_a_command_holds_the_turn_is_delivered_after_it(
    open_client, alice, public
):
    client = await open_client(alice)
    await client.subscribe("*")
    event_id = await emit("new_message", {}, channel_id=public.channel_id)

    async with client.delivery.turn():
        await client.wake_now(event_id)
        sent_meanwhile = client.seen()
    await client.delivery.catch_up

    assert sent_meanwhile == [SUBSCRIBED]
    assert client.seen() == [SUBSCRIBED, event_id]


async def test_every_delivery_of_an_event_sends_the_same_text(open_client, alice, public):
    window = LogWindow(size=100)
    first, second = await open_client(alice, window=window), await open_client(alice, window=window)
    await first.subscribe("*")
    await second.subscribe("*")
    event_id = await emit("new_message", {}, channel_id=public.channel_id)

    await first.wake(event_id)
    await second.wake(event_id)

    assert first.seen() == second.seen() == [SUBSCRIBED, event_id]
    assert first.frames[1] is second.frames[1]


async def test_unsubscribing_an_unknown_subscription_raises_subscription_not_found(
    open_client, alice
):
    client = await open_client(alice)

    with pytest.raises(SubscriptionNotFound):
        await client.delivery.unsubscribe("sub-9")
