"""Connecting: credentials in the query, a header or the auth command; origins; close codes;
the limits that protect the process."""

import json
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from rest_framework_simplejwt.tokens import AccessToken

from system.auth.services import api_key_revoke
from system.models import ApiKey
from tests.realtime.conftest import emit

pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]


async def test_a_jwt_in_the_query_connects_and_reports_the_principal(open_socket, alice, jwt_for):
    socket = await open_socket(token=await jwt_for(alice))

    data = socket.hello["data"]
    assert data["principal"] == {
        "id": f"user:{alice.pk}",
        "type": "user",
        "username": "alice",
        "roles": ["messaging"],
    }
    assert data["connection_id"]
    assert data["server_time"]


async def test_connection_established_names_the_newest_event_id(open_socket, alice, jwt_for):
    newest = await emit("agent_status_update")

    socket = await open_socket(token=await jwt_for(alice))

    assert socket.hello["data"]["last_event_id"] == newest


async def test_an_api_key_in_the_query_connects_with_the_keys_roles(open_socket, alice, key_for):
    socket = await open_socket(token=await key_for(alice, "agent_manager"))

    principal = socket.hello["data"]["principal"]
    assert principal["type"] == "api_key"
    assert principal["id"].startswith("key:")
    assert principal["roles"] == ["agent_manager"]


async def test_an_api_key_in_a_header_connects(open_socket, alice, key_for):
    key = (await key_for(alice, "messaging")).encode()
    headers = [
        [(b"authorization", b"ApiKey " + key)],
        [(b"authorization", b"apikey " + key)],
        [(b"x-api-key", key)],
    ]

    sockets = [await open_socket(headers=h) for h in headers]

    assert [s.hello["data"]["principal"]["username"] for s in sockets] == ["alice"] * 3


async def test_a_bearer_jwt_in_the_authorization_header_connects(open_socket, alice, jwt_for):
    token = await jwt_for(alice)

    socket = await open_socket(headers=[(b"authorization", f"Bearer {token}".encode())])

    assert socket.hello["data"]["principal"]["id"] == f"user:{alice.pk}"


async def test_the_query_token_wins_over_a_header(open_socket, alice, make_user, key_for):
    bob = await database_sync_to_async(make_user)("bob", roles=("messaging",))
    key = await key_for(bob, "messaging")

    socket = await open_socket(
        token=await key_for(alice, "messaging"), headers=[(b"x-api-key", key.encode())]
    )

    assert socket.hello["data"]["principal"]["username"] == "alice"


async def test_the_auth_command_authenticates_a_socket_opened_without_credentials(
    open_socket, alice, jwt_for
):
    socket = await open_socket(established=False)

    await socket.send(command="auth", token=await jwt_for(alice))

    hello = await socket.receive()
    assert hello["event"] == "connection_established"
    assert hello["data"]["principal"]["username"] == "alice"


async def test_the_api_prefixed_path_is_the_same_endpoint(open_socket, alice, key_for):
    socket = await open_socket(token=await key_for(alice, "messaging"), path="/api/v1/ws")

    assert socket.hello["event"] == "connection_established"


async def test_bad_credentials_close_with_4401_and_a_reason(open_socket):
    bad = [
        {"token": "not-a-token"},
        {"token": "371os_abcdef123456_" + "0" * 64},
        {"token": ""},
        {"headers": [(b"authorization", b"Bearer not-a-jwt")]},
        {"headers": [(b"authorization", b"Basic YWxpY2U6cHc=")]},
        {"headers": [(b"x-api-key", b"371os_nope_nope")]},
    ]

    closes = [await (await open_socket(established=False, **c)).closed() for c in bad]

    assert [code for code, _ in closes] == [4401] * len(bad)
    assert all(reason for _, reason in closes)


async def test_a_bad_token_in_the_auth_command_closes_with_4401(open_socket):
    socket = await open_socket(established=False)

    await socket.send(command="auth", token="not-a-token")

    assert (await socket.closed())[0] == 4401


async def test_a_first_message_that_is_not_auth_closes_with_4401(open_socket):
    socket = await open_socket(established=False)

    await socket.send(command="subscribe", event_type="*")

    assert await socket.closed() == (4401, "Authentication required.")


async def test_a_first_frame_that_is_not_json_closes_with_4401(open_socket):
    socket = await open_socket(established=False)

    await socket.communicator.send_to(text_data="{not json")

    assert await socket.closed() == (4401, "Authentication required.")


async def test_no_credentials_within_the_auth_timeout_closes_with_4401(open_socket, settings):
    settings.WS_AUTH_TIMEOUT_SECONDS = 0.1

    socket = await open_socket(established=False)

    assert await socket.closed() == (4401, "Authentication timed out.")


async def test_an_expired_jwt_is_refused(open_socket, alice):
    token = AccessToken.for_user(alice)
    token.set_exp(lifetime=timedelta(seconds=-1))

    socket = await open_socket(token=str(token), established=False)

    assert (await socket.closed())[0] == 4401


async def test_a_jwt_that_expires_while_connected_ends_the_connection(open_socket, alice, settings):
    settings.WS_AUTH_RECHECK_SECONDS = 0.1
    token = AccessToken.for_user(alice)
    token.set_exp(lifetime=timedelta(seconds=1))

    socket = await open_socket(token=str(token))

    assert await socket.closed() == (4401, "Token expired.")


async def test_revoking_the_api_key_ends_the_connection(open_socket, alice, key_for, settings):
    settings.WS_AUTH_RECHECK_SECONDS = 0.1
    key = await key_for(alice, "messaging")
    socket = await open_socket(token=key)

    await database_sync_to_async(lambda: api_key_revoke(api_key=ApiKey.objects.get(owner=alice)))()

    assert await socket.closed() == (4401, "API key revoked or expired.")


async def test_deactivating_the_user_ends_a_jwt_connection(open_socket, alice, jwt_for, settings):
    settings.WS_AUTH_RECHECK_SECONDS = 0.1
    socket = await open_socket(token=await jwt_for(alice))

    alice.is_active = False
    await database_sync_to_async(alice.save)()

    assert await socket.closed() == (4401, "User inactive.")


async def test_deactivating_a_user_closes_their_sockets_without_waiting_for_the_recheck(
    open_socket, alice, jwt_for, key_for, settings
):
    settings.WS_AUTH_RECHECK_SECONDS = 3600  # only the channel layer can be this quick
    by_jwt = await open_socket(token=await jwt_for(alice))
    by_key = await open_socket(token=await key_for(alice, "messaging"))

    alice.is_active = False
    await database_sync_to_async(alice.save)()

    assert await by_jwt.closed() == (4401, "User inactive.")
    assert await by_key.closed() == (4401, "API key revoked or expired.")


async def test_revoking_an_api_key_closes_its_socket_without_waiting_for_the_recheck(
    open_socket, alice, key_for, settings
):
    settings.WS_AUTH_RECHECK_SECONDS = 3600
    socket = await open_socket(token=await key_for(alice, "messaging"))

    await database_sync_to_async(lambda: api_key_revoke(api_key=ApiKey.objects.get(owner=alice)))()

    assert await socket.closed() == (4401, "API key revoked or expired.")


# --- origins ------------------------------------------------------------------------------


async def test_a_page_from_a_foreign_origin_is_refused(open_socket, alice, key_for):
    socket = await open_socket(
        token=await key_for(alice, "messaging"),
        headers=[(b"origin", b"https://evil.example")],
        established=False,
    )

    assert socket.refused_with == 1000  # handshake refused: daphne answers HTTP 403


async def test_a_page_from_one_of_our_hosts_connects(open_socket, alice, key_for):
    socket = await open_socket(
        token=await key_for(alice, "messaging"), headers=[(b"origin", b"http://localhost:8001")]
    )

    assert socket.hello["event"] == "connection_established"


async def test_a_page_from_a_trusted_origin_connects(open_socket, alice, key_for, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://*.console.example"]

    socket = await open_socket(
        token=await key_for(alice, "messaging"),
        headers=[(b"origin", b"https://ops.console.example")],
    )

    assert socket.hello["event"] == "connection_established"


async def test_a_trusted_origin_must_match_its_scheme(open_socket, alice, key_for, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://console.example"]

    socket = await open_socket(
        token=await key_for(alice, "messaging"),
        headers=[(b"origin", b"http://console.example")],
        established=False,
    )

    assert socket.refused_with == 1000


async def test_a_client_without_an_origin_header_connects(open_socket, alice, key_for):
    socket = await open_socket(token=await key_for(alice, "messaging"), headers=[])

    assert socket.hello["event"] == "connection_established"


# --- limits -----------------------------------------------------------------------------


async def test_a_frame_over_64_kib_that_reaches_the_application_closes_with_4009(
    open_socket, alice, key_for
):
    # Under daphne the transport refuses it first with 1009 (tests/e2e/test_ws_bounds.py);
    # an application may close only with 1000 or 3000-4999.
    socket = await open_socket(token=await key_for(alice, "messaging"))

    await socket.communicator.send_to(
        text_data=json.dumps({"command": "ping", "pad": "x" * (64 * 1024)})
    )

    assert await socket.closed() == (4009, "Frame too big.")


async def test_commands_over_the_rate_get_an_error_then_the_socket_is_closed(
    open_socket, alice, key_for, settings
):
    settings.WS_COMMAND_RATE = 0.01
    settings.WS_COMMAND_BURST = 3
    settings.WS_COMMAND_OVERFLOW_CLOSE = 5
    socket = await open_socket(token=await key_for(alice, "messaging"))

    for _ in range(10):
        await socket.send(command="ping")
    replies = [await socket.receive() for _ in range(5)]

    assert [r.get("event") for r in replies[:4]] == ["pong", "pong", "pong", "error"]
    assert replies[3]["data"]["code"] == "rate_limit_exceeded"
    assert (replies[4]["closed"], replies[4]["reason"]) == (4008, "Command rate limit exceeded.")


async def test_an_idle_connection_gets_server_pings(open_socket, alice, key_for, settings):
    settings.WS_PING_SECONDS = 0.1
    socket = await open_socket(token=await key_for(alice, "messaging"))

    ping = await socket.receive()

    assert ping["event"] == "ping"
    assert ping["data"]["server_time"]
