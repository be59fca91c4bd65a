"""The WebSocket path's bounds and careless input: replay depth, sockets per principal and per
address, unknown paths and event types, agents named in filters."""

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from agents.services import agent_create
from system.realtime.routing import websocket_application
from tests.realtime.conftest import WAIT, Socket, emit, emit_now

pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]


def said(channel, n: int) -> list[int]:
    return [emit_now("new_message", {"n": i}, channel_id=channel.channel_id) for i in range(n)]


# --- replay depth ------------------------------------------------------------------------


async def test_a_resume_further_back_than_ws_replay_max_events_asks_for_a_resync(
    connect, public, settings
):
    settings.WS_REPLAY_MAX_EVENTS = 3
    missed = await database_sync_to_async(said)(public, 5)
    socket = await connect()
    await socket.subscribe("*")

    reply = await socket.command(command="resume", last_event_id=missed[0] - 1)

    assert reply["event"] == "resync_required"
    assert reply["data"]["reason"] == "replay_too_long"
    assert reply["data"]["max_replay_events"] == 3
    assert reply["data"]["last_event_id"] == missed[-1]


async def test_last_event_id_0_on_connect_past_the_replay_cap_asks_for_a_resync(
    connect, public, settings
):
    settings.WS_REPLAY_MAX_EVENTS = 3
    await database_sync_to_async(said)(public, 5)

    socket = await connect(last_event_id=0)
    message = await socket.receive()

    assert message["event"] == "resync_required"
    assert message["data"]["reason"] == "replay_too_long"


# --- sockets per principal and per address --------------------------------------------------


async def test_a_principals_sockets_past_its_cap_are_closed_with_4008_until_one_closes(
    open_socket, alice, key_for, settings
):
    settings.WS_MAX_SOCKETS_PER_PRINCIPAL = 1
    key = await key_for(alice, "messaging")
    first = await open_socket(token=key)

    refused = await open_socket(token=key, established=False)
    refused_close = await refused.closed()
    await first.disconnect()
    after_close = await open_socket(token=key)

    assert refused_close == (4008, "Too many connections for this principal (at most 1).")
    assert after_close.hello["event"] == "connection_established"


async def test_an_addresses_sockets_past_its_cap_are_closed_with_4008(
    alice, bob, jwt_for, settings
):
    settings.WS_MAX_SOCKETS_PER_IP = 1
    sockets = []
    for user in (alice, bob):
        path = f"/v1/ws?token={await jwt_for(user)}"
        communicator = WebsocketCommunicator(websocket_application(), path)
        communicator.scope["client"] = ("10.3.0.1", 50000 + len(sockets))
        assert (await communicator.connect(timeout=WAIT))[0]
        sockets.append(Socket(communicator))
    try:
        assert (await sockets[0].receive())["event"] == "connection_established"
        closed = await sockets[1].closed()
    finally:
        for socket in sockets:
            await socket.disconnect()

    assert closed == (4008, "Too many connections from this address (at most 1).")


# --- careless input ------------------------------------------------------------------------


async def test_a_socket_to_an_unknown_path_is_closed_cleanly_with_4404(open_socket):
    socket = await open_socket(path="/v2/ws", established=False)

    assert await socket.closed() == (4404, "No WebSocket endpoint here; use /v1/ws.")


async def test_subscribing_to_an_unknown_event_type_answers_an_error_listing_the_valid_ones(
    connect,
):
    socket = await connect()

    reply = await socket.command(command="subscribe", event_type="agent_stats")

    assert reply["event"] == "error"
    assert reply["data"]["code"] == "invalid_command"
    valid = reply["data"]["details"]["valid_event_types"]
    assert {"agent_status_update", "new_message", "session_update", "workflow_update"} <= set(valid)
    assert "*" in valid
    assert "agent_status_update" in reply["data"]["message"]


async def test_an_agent_filter_takes_the_agents_name_like_rest(connect_as, root):
    agent = await database_sync_to_async(agent_create)(name="ceo-mimi-001", type="ceo_mimi")
    socket = await connect_as(root)

    reply = await socket.subscribe("agent_status", agent_id="ceo-mimi-001")
    await emit("agent_status_update", {"status": "unscoped"})
    sent = await emit("agent_status_update", {"status": "running"}, agent_id=agent.agent_id)

    assert reply["data"]["filter"] == {"agent_id": str(agent.agent_id)}
    assert (await socket.next_event())["event_id"] == sent


async def test_an_agent_filter_with_an_unknown_name_answers_agent_not_found(connect_as, root):
    socket = await connect_as(root)

    reply = await socket.command(
        command="subscribe", event_type="agent_status", filter={"agent_id": "no-such-agent"}
    )

    assert reply["event"] == "error"
    assert reply["data"]["code"] == "agent_not_found"
