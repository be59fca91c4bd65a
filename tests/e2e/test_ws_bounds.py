"""The WebSocket transport's bounds and close codes on the real ws process (daphne under
system.devserver.bounded_daphne): what a client sees, which the ASGI tests cannot show."""

import asyncio
import json
import socket as sockets
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from messaging.services import channel_create
from tests.e2e.conftest import LiveStack, run_stack
from tests.e2e.test_realtime import WAIT, socket, subscribe

pytestmark = [pytest.mark.e2e, pytest.mark.embedded]


@pytest.fixture
def alice_key(transactional_db, make_user, make_api_key) -> str:
    return make_api_key(["messaging"], owner=make_user("alice"))


async def closed_with(ws) -> tuple[int, str]:
    """Read until the server closes; its close code and reason."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), WAIT)
    assert closed.value.rcvd is not None, closed.value
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def test_a_frame_over_64_kib_is_refused_by_the_transport_with_1009(live_stack, alice_key):
    async with socket(live_stack, alice_key) as ws:
        await ws.send(json.dumps({"command": "ping", "pad": "x" * (70 * 1024)}))
        code, _ = await closed_with(ws)

    assert code == 1009


async def test_a_4401_close_carries_its_reason_to_the_client(live_stack):
    async with connect(f"{live_stack.ws_url}?token=not-a-key", proxy=None) as ws:
        code, reason = await closed_with(ws)

    assert code == 4401
    assert reason


async def test_an_unknown_websocket_path_is_closed_cleanly_with_4404(live_stack):
    url = live_stack.ws_url.replace("/v1/ws", "/v2/ws")
    async with connect(url, proxy=None, open_timeout=WAIT) as ws:
        code, reason = await closed_with(ws)

    assert (code, reason) == (4404, "No WebSocket endpoint here; use /v1/ws.")


# --- a client that stops reading -----------------------------------------------------------

SEND_BUFFER_BYTES = 64 * 1024


@pytest.fixture(scope="module")
def small_buffer_stack(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[LiveStack]:
    """A stack of its own whose sockets may queue only 64 KiB for a client."""
    with (
        django_db_blocker.unblock(),
        run_stack(
            tmp_path_factory.mktemp("small-buffer"),
            WS_SEND_BUFFER_BYTES=str(SEND_BUFFER_BYTES),
            WS_CONCURRENCY="1",
        ) as stack,
    ):
        yield stack


@pytest.fixture
def alices_channel(transactional_db, make_user, make_api_key):
    alice = make_user("alice")
    key = make_api_key(["messaging"], owner=alice)
    return key, channel_create(name="general", type="public", members=[], actor=alice)


async def test_a_client_that_stops_reading_is_closed_with_1008_once_its_buffer_is_full(
    small_buffer_stack, alices_channel
):
    stack, (key, channel) = small_buffer_stack, alices_channel
    # A small receive window, and a client library that stops reading once one message waits:
    # what the server has queued for this client stays queued.
    raw = sockets.socket()
    raw.setsockopt(sockets.SOL_SOCKET, sockets.SO_RCVBUF, 4096)  # before connect: the window
    raw.connect(("127.0.0.1", int(stack.ws_url.split(":")[2].split("/")[0])))
    url = f"{stack.ws_url}?{urlencode({'token': key})}"
    posted = 120
    async with connect(url, sock=raw, proxy=None, max_queue=1, open_timeout=WAIT) as ws:
        assert json.loads(await ws.recv())["event"] == "connection_established"
        await subscribe(ws, "message", channel_id=str(channel.channel_id))
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=WAIT) as client:
            for n in range(posted):  # 120 events of 30 KB: far more than 64 KiB
                response = await client.post(
                    f"/api/v1/channels/{channel.channel_id}/messages",
                    json={"sender_id": "alice", "content": f"{n}:" + "x" * 30_000},
                    headers={"X-API-KEY": key},
                )
                assert response.status_code == 201, response.text
        received = 0
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
                received += "event_id" in message

    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert received < posted
