"""Event frames use the API's one timestamp format (ISO 8601, UTC, milliseconds, "Z"): the
frame's `timestamp`, every datetime in `data.*`, and `server_time`, live and replayed."""

import re
from datetime import UTC, datetime

import pytest

from system.kernel.timefmt import ISO_Z_PATTERN
from tests.realtime.conftest import emit

pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]

ISO_Z = re.compile(ISO_Z_PATTERN)
WHOLE_SECOND = datetime(2025, 9, 13, 17, 28, 17, tzinfo=UTC)


async def test_live_and_replayed_frames_write_every_datetime_with_milliseconds_and_z(
    connect, public
):
    socket = await connect()
    await socket.subscribe("*")
    await emit("new_message", {"message": {"sent_at": WHOLE_SECOND}}, channel_id=public.channel_id)
    live = await socket.next_event()
    replaying = await connect(last_event_id=live["event_id"] - 1)
    await replaying.subscribe("*")
    replayed = await replaying.next_event()

    assert ISO_Z.match(live["timestamp"])
    assert live["data"]["message"]["sent_at"] == "2025-09-13T17:28:17.000Z"
    assert replayed == live
    assert ISO_Z.match(socket.hello["data"]["server_time"])
