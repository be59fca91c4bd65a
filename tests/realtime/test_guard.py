"""Sockets that have not authenticated: failed authentications count per client address like
REST's, and an address may hold only so many unauthenticated sockets at once."""

from pathlib import Path

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings

from system.realtime.routing import websocket_application
from tests.realtime.conftest import WAIT, Socket

pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]

RULES = Path(django_settings.ROUTING_RULES_PATH).read_text()


@pytest.fixture
async def sockets():
    """sockets(address, token=None, headers=()) → a connected Socket from that client address;
    all are disconnected after the test."""
    opened: list[Socket] = []

    async def open_(address: str, *, token: str | None = None, headers=()) -> Socket:
        path = f"/v1/ws?token={token}" if token is not None else "/v1/ws"
        communicator = WebsocketCommunicator(websocket_application(), path, list(headers))
        communicator.scope["client"] = (address, 50000 + len(opened))
        socket = Socket(communicator)
        opened.append(socket)
        connected, _ = await communicator.connect(timeout=WAIT)
        assert connected
        return socket

    yield open_
    for socket in opened:
        await socket.communicator.disconnect(timeout=WAIT)


@pytest.fixture
def anonymous_limit(tmp_path, settings):
    path = tmp_path / "rules.yaml"
    path.write_text(RULES.replace("  anonymous: 60", "  anonymous: 3"))
    settings.ROUTING_RULES_PATH = path


async def test_repeated_failed_authentications_from_one_address_close_with_4429(
    sockets, anonymous_limit, fresh_rate_window
):
    refused = [await (await sockets("10.1.0.1", token="bad")).closed() for _ in range(3)]

    code, reason = await (await sockets("10.1.0.1", token="bad")).closed()

    assert [c for c, _ in refused] == [4401, 4401, 4401]
    assert code == 4429
    assert "Too many failed authentications" in reason


async def test_failed_authentications_of_another_address_are_not_counted(
    sockets, anonymous_limit, fresh_rate_window
):
    for _ in range(3):
        await (await sockets("10.1.1.1", token="bad")).closed()

    code, _ = await (await sockets("10.1.1.2", token="bad")).closed()

    assert code == 4401


async def test_failed_authentications_count_the_forwarded_address_behind_a_trusted_proxy(
    sockets, anonymous_limit, settings, fresh_rate_window
):
    settings.TRUSTED_PROXY_COUNT = 1
    forwarded = [(b"x-forwarded-for", b"203.0.113.7")]
    for _ in range(3):
        await (await sockets("127.0.0.1", token="bad", headers=forwarded)).closed()

    other, _ = await (await sockets("127.0.0.1", token="bad")).closed()
    same, _ = await (await sockets("127.0.0.1", token="bad", headers=forwarded)).closed()

    assert (other, same) == (4401, 4429)


async def test_sockets_past_the_unauthenticated_cap_of_an_address_are_refused(
    sockets, settings, alice, jwt_for
):
    settings.WS_MAX_UNAUTHENTICATED_PER_IP = 2
    waiting = [await sockets("10.2.0.1"), await sockets("10.2.0.1")]

    code, reason = await (await sockets("10.2.0.1")).closed()
    elsewhere = await sockets("10.2.0.2")

    assert code == 4008
    assert "unauthenticated" in reason
    assert await waiting[0].nothing_pending()
    assert await elsewhere.nothing_pending()


async def test_an_authenticated_socket_leaves_the_unauthenticated_count(
    sockets, settings, alice, jwt_for
):
    settings.WS_MAX_UNAUTHENTICATED_PER_IP = 1
    first = await sockets("10.2.1.1")
    hello = await first.command(command="auth", token=await jwt_for(alice))

    second = await sockets("10.2.1.1")

    assert hello["event"] == "connection_established"
    assert await second.nothing_pending()


async def test_a_closed_socket_leaves_the_unauthenticated_count(sockets, settings):
    settings.WS_MAX_UNAUTHENTICATED_PER_IP = 1
    first = await sockets("10.2.2.1")
    await first.disconnect()

    second = await sockets("10.2.2.1")

    assert await second.nothing_pending()


async def test_sockets_with_credentials_in_the_handshake_do_not_wait_in_the_cap(
    sockets, settings, alice, jwt_for
):
    settings.WS_MAX_UNAUTHENTICATED_PER_IP = 1
    await sockets("10.2.3.1")

    socket = await sockets("10.2.3.1", token=await jwt_for(alice))

    assert (await socket.receive())["event"] == "connection_established"
