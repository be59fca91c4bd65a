"""Password attempts, on the token endpoint and the admin login page, are limited per username
and per client address, and refused (fail closed) while Redis cannot keep the counts."""

import pytest

from system.devserver.embedded_redis import free_port

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

TOKEN_URL = "/api/v1/auth/token"


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def redis_down(settings):
    """Every Redis call of the request path goes to a port nothing listens on."""
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"


def token_attempt(api_client, address: str, username: str = "alice", password: str = "wrong"):
    body = {"username": username, "password": password}
    return api_client.post(TOKEN_URL, body, format="json", REMOTE_ADDR=address)


def test_token_endpoint_past_the_per_username_limit_answers_429_from_any_address(
    api_client, alice, settings, fresh_rate_window
):
    settings.LOGIN_RATE_PER_USERNAME = 3
    first = [token_attempt(api_client, f"10.0.0.{n}").status_code for n in range(3)]

    response = token_attempt(api_client, "10.0.0.99", password="pw-123456!")

    assert first == [401, 401, 401]
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    assert 1 <= int(response["Retry-After"]) <= 60


def test_token_endpoint_past_the_per_address_limit_answers_429_for_any_username(
    api_client, make_user, settings, fresh_rate_window
):
    settings.LOGIN_RATE_PER_IP = 2
    first = [token_attempt(api_client, "10.0.1.1", f"user-{n}").status_code for n in range(2)]

    response = token_attempt(api_client, "10.0.1.1", "someone-else")

    assert first == [401, 401]
    assert response.status_code == 429
    assert "Retry-After" in response


def test_token_endpoint_answers_429_while_redis_is_unreachable(api_client, alice, redis_down):
    response = token_attempt(api_client, "10.0.2.1", password="pw-123456!")

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    assert int(response["Retry-After"]) > 0
    assert "access" not in response.json()


def admin_login(client, address: str, username: str = "chief", password: str = "wrong"):
    body = {"username": username, "password": password, "next": "/admin/"}
    return client.post("/admin/login/", body, REMOTE_ADDR=address)


def test_admin_login_past_the_per_username_limit_answers_429(
    client, make_user, settings, fresh_rate_window
):
    make_user("chief", is_staff=True, is_superuser=True)
    settings.LOGIN_RATE_PER_USERNAME = 2
    first = [admin_login(client, f"10.0.3.{n}").status_code for n in range(2)]

    response = admin_login(client, "10.0.3.50", password="pw-123456!")

    assert first == [200, 200]  # the form again, with its error
    assert response.status_code == 429
    assert "Retry-After" in response
    assert "_auth_user_id" not in client.session


def test_admin_login_answers_429_while_redis_is_unreachable(client, make_user, redis_down):
    make_user("chief", is_staff=True, is_superuser=True)

    response = admin_login(client, "10.0.4.1", password="pw-123456!")

    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_admin_login_page_itself_is_not_counted(client, settings, fresh_rate_window):
    settings.LOGIN_RATE_PER_IP = 1

    statuses = [client.get("/admin/login/").status_code for _ in range(3)]

    assert statuses == [200, 200, 200]
