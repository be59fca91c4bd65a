"""Careless HTTP input gets a clear 4xx in the house envelope (issue 19 item 5, issue 17
item 5): out-of-range page/limit, chunked bodies, wrong credentials schemes, expired JWTs."""

import io
import json
from datetime import timedelta

import pytest
import time_machine
from django.db.backends.signals import connection_created
from django.utils import timezone
from rest_framework.test import APIClient

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

KEYS_URL = "/api/v1/auth/api-keys"
SCHEMES = [
    "Authorization: ApiKey <key>",
    "Authorization: Bearer <jwt>",
    "X-API-KEY: <key>",
]


# --- page / limit ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/auth/api-keys",
        "/api/v1/agents",
        "/api/v1/channels",
        "/api/v1/sessions",
        "/api/v1/system/tasks",
    ],
)
@pytest.mark.parametrize(
    ("name", "value"), [("page", "0"), ("page", "-1"), ("limit", "0"), ("limit", "-5")]
)
def test_a_page_or_limit_below_one_is_a_400_naming_it(client_as, url, name, value):
    response = client_as("admin").get(f"{url}?{name}={value}")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["message"] == f"'{name}' must be at least 1."
    assert error["details"] == {name: ["Ensure this value is greater than or equal to 1."]}


@pytest.mark.parametrize("limit", ["0", "-5"])
def test_message_history_refuses_a_limit_below_one(client_as, limit):
    client = client_as("admin")
    channel = client.post("/api/v1/channels", {"name": "ops", "type": "public"}, format="json")

    response = client.get(f"/api/v1/channels/{channel.json()['channel_id']}/messages?limit={limit}")

    assert response.status_code == 400
    assert set(response.json()["error"]["details"]) == {"limit"}


# --- chunked bodies (WSGI: no Content-Length) --------------------------------------------------


def _post_chunked(client: APIClient, body: bytes):
    """A WSGI request as a server hands over a chunked body: Transfer-Encoding, no
    Content-Length, the body on wsgi.input."""
    return client.generic(
        "POST",
        KEYS_URL,
        content_type="application/json",
        CONTENT_LENGTH="",
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": io.BytesIO(body)},
    )


def test_a_chunked_body_is_read(client_as):
    body = json.dumps({"name": "chunked", "roles": ["messaging"]}).encode()

    response = _post_chunked(client_as("admin"), body)

    assert response.status_code == 201, response.content
    assert response.json()["name"] == "chunked"


def test_a_chunked_body_over_the_limit_is_a_413(client_as, settings):
    settings.MAX_REQUEST_BODY_BYTES = 1024
    body = json.dumps({"name": "x" * 2000, "roles": ["messaging"]}).encode()

    response = _post_chunked(client_as("admin"), body)

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


# --- credentials -------------------------------------------------------------------------------


@pytest.fixture
def access_token(api_client, make_user):
    make_user("root", roles=("admin",), password="correct horse")
    response = api_client.post(
        "/api/v1/auth/token", {"username": "root", "password": "correct horse"}, format="json"
    )
    return response.json()["access"]


def test_an_expired_jwt_answers_token_expired_without_library_internals(api_client, access_token):
    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        response = api_client.get(KEYS_URL, HTTP_AUTHORIZATION=f"Bearer {access_token}")

    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "token_expired"
    assert error["details"] == {}
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_only_a_well_signed_expired_jwt_answers_token_expired(api_client, access_token):
    head, payload, signature = access_token.split(".")
    forged = f"{head}.{payload}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}"

    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        expired = api_client.get(KEYS_URL, HTTP_AUTHORIZATION=f"Bearer {access_token}")
        forged_expired = api_client.get(KEYS_URL, HTTP_AUTHORIZATION=f"Bearer {forged}")

    assert expired.json()["error"]["code"] == "token_expired"
    assert forged_expired.json()["error"]["code"] == "invalid_token"


@pytest.mark.parametrize("token", ["garbage", "a.b.c"])
def test_a_garbage_jwt_answers_invalid_token_without_library_internals(api_client, token):
    response = api_client.get(KEYS_URL, HTTP_AUTHORIZATION=f"Bearer {token}")

    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "invalid_token"
    assert error["details"] == {}
    assert "token_not_valid" not in response.content.decode()
    assert "token_class" not in response.content.decode()


@pytest.mark.parametrize("header", ["Token {key}", "{key}", "Basic {key}"])
def test_an_unknown_authorization_scheme_names_the_schemes_that_work(
    api_client, make_api_key, header
):
    key = make_api_key(["admin"])

    response = api_client.get(KEYS_URL, HTTP_AUTHORIZATION=header.format(key=key))

    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "unsupported_auth_scheme"
    assert error["details"] == {"supported_schemes": SCHEMES}
    assert "ApiKey <key>" in error["message"] and "Bearer <jwt>" in error["message"]
    assert key not in response.content.decode()


def test_x_api_key_also_takes_a_key_pasted_with_its_scheme(api_client, make_api_key):
    key = make_api_key(["admin"])

    response = api_client.get(KEYS_URL, HTTP_X_API_KEY=f"ApiKey {key}")

    assert response.status_code == 200


# --- /readyz -----------------------------------------------------------------------------------


def test_readyz_opens_no_database_connection_per_call(client, settings):
    settings.READINESS_CACHE_SECONDS = 0
    assert client.get("/readyz").status_code == 200
    opened = []

    def count(sender, connection, **kwargs):
        opened.append(connection.alias)

    connection_created.connect(count)
    try:
        statuses = [client.get("/readyz").status_code for _ in range(5)]
    finally:
        connection_created.disconnect(count)

    assert statuses == [200] * 5
    assert opened == []
