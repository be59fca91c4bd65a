"""The WebSocket endpoint scaled out: several daphne processes on one listening socket
(`python -m system.devserver.ws`, WS_CONCURRENCY=2), reached through the channel layer.

"Does not receive X" is asserted as in test_realtime.py: X is written before a marker the
socket does receive, so its next event must be the marker.
"""

import asyncio
from contextlib import AsyncExitStack

import httpx
import pytest
from websockets.asyncio.client import ClientConnection

from messaging.services import channel_create
from system.models import ApiKey
from tests.e2e.faults import serving_process, ws_processes
from tests.e2e.test_realtime import WAIT, next_event, post_message, socket, subscribe

pytestmark = [pytest.mark.e2e, pytest.mark.embedded]

# The bound of the Done-when: a revoked key's socket closes, a removed member stops seeing a
# private channel, within a second on every ws process (the periodic re-check is 30 s).
WITHIN = 1.0


async def api(stack, method: str, path: str, key: str, **kwargs) -> httpx.Response:
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=WAIT) as client:
        return await client.request(method, path, headers={"X-API-KEY": key}, **kwargs)


@pytest.fixture
def team(transactional_db, make_user, make_api_key):
    """erin and frank (messaging keys; frank's key id too), root (admin key), a private
    channel of both, and a public one."""
    erin, frank, root = make_user("erin"), make_user("frank"), make_user("root")
    frank_key = make_api_key(["messaging"], owner=frank)
    return {
        "erin": make_api_key(["messaging"], owner=erin),
        "frank": frank_key,
        "frank_key_id": ApiKey.objects.get(prefix=frank_key.split("_")[1]).pk,
        "root": make_api_key(["admin"], owner=root),
        "private": channel_create(
            name="deal-room", type="private", members=["erin", "frank"], actor=erin
        ),
        "public": channel_create(name="lobby", type="public", members=[], actor=erin),
    }


def test_the_ws_entry_runs_two_daphne_processes_on_one_socket(live_stack):
    processes = ws_processes(live_stack)

    assert len(processes) == 2
    assert all("daphne" in " ".join(p.cmdline()) for p in processes)


async def test_one_event_reaches_a_client_on_each_process_exactly_once(live_stack, team):
    public = team["public"]
    async with AsyncExitStack() as sockets:
        clients: dict[int, ClientConnection] = {}
        # The kernel spreads connections over the processes: open some until both serve one.
        for _ in range(40):
            ws = await sockets.enter_async_context(socket(live_stack, team["erin"]))
            clients.setdefault(serving_process(live_stack, ws), ws)
            if len(clients) == 2:
                break
        assert len(clients) == 2
        for ws in clients.values():
            await subscribe(ws, "message", channel_id=str(public.channel_id))

        event = await post_message(live_stack, team["frank"], public, "frank", "to all")
        marker = await post_message(live_stack, team["frank"], public, "frank", "marker")

        for ws in clients.values():
            assert (await next_event(ws))["data"]["message"]["message_id"] == event
            assert (await next_event(ws))["data"]["message"]["message_id"] == marker


async def test_revoking_a_connected_clients_key_closes_its_socket_with_4401(live_stack, team):
    key_id = team["frank_key_id"]
    async with socket(live_stack, team["frank"]) as ws:
        revoked = await api(
            live_stack, "POST", f"/api/v1/auth/api-keys/{key_id}/revoke", team["root"]
        )
        assert revoked.status_code == 200, revoked.text

        await asyncio.wait_for(ws.wait_closed(), WITHIN)

    assert ws.close_code == 4401


async def test_a_member_removed_from_a_private_channel_stops_receiving_its_events(live_stack, team):
    private, public = team["private"], team["public"]
    async with socket(live_stack, team["frank"]) as frank:
        # Both channels by id: other tests' public channels share this stack.
        await subscribe(frank, "message", channel_id=str(private.channel_id))
        await subscribe(frank, "message", channel_id=str(public.channel_id))
        before = await post_message(live_stack, team["erin"], private, "erin", "still in")
        assert (await next_event(frank))["data"]["message"]["message_id"] == before

        removed = await api(
            live_stack,
            "DELETE",
            f"/api/v1/channels/{private.channel_id}/members/frank",
            team["root"],
        )
        assert removed.status_code == 200, removed.text
        await asyncio.sleep(WITHIN)
        await post_message(live_stack, team["erin"], private, "erin", "after frank left")
        marker = await post_message(live_stack, team["erin"], public, "erin", "marker")

        assert (await next_event(frank))["data"]["message"]["message_id"] == marker
