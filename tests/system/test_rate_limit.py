"""Atomic per-principal rate limits in Redis, with the spec's headers."""

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from rest_framework.test import APIRequestFactory

from system.devserver.embedded_redis import free_port
from system.kernel.principal import client_ip

KEYS_URL = "/api/v1/auth/api-keys"
RULES = Path(settings.ROUTING_RULES_PATH).read_text()

pytestmark = pytest.mark.embedded


@pytest.fixture
def admin_limit(tmp_path, settings):
    """Lower the admin role's per-minute limit to `n` with a rules file of the test's own."""

    def set_limit(n: int) -> None:
        path = tmp_path / "rules.yaml"
        path.write_text(RULES.replace("    admin: 1000", f"    admin: {n}"))
        settings.ROUTING_RULES_PATH = path

    return set_limit


@pytest.mark.django_db
def test_authenticated_responses_carry_the_rate_limit_headers(client_as, fresh_rate_window):
    client = client_as("admin")

    first, second = client.get(KEYS_URL), client.get(KEYS_URL)

    assert first["X-RateLimit-Limit"] == "1000"
    assert first["X-RateLimit-Remaining"] == "999"
    assert second["X-RateLimit-Remaining"] == "998"
    reset = int(first["X-RateLimit-Reset"])
    assert time.time() < reset <= time.time() + 60


@pytest.mark.django_db
def test_limit_follows_the_principals_highest_role(client_as):
    response = client_as("messaging", "system_monitor").get("/api/docs/")

    assert response["X-RateLimit-Limit"] == "300"


@pytest.mark.django_db
def test_forbidden_responses_are_counted_too(client_as):
    response = client_as("system_monitor").get(KEYS_URL)

    assert response.status_code == 403
    assert response["X-RateLimit-Limit"] == "200"


@pytest.mark.django_db
def test_over_the_limit_answers_429_with_retry_after_and_details(
    client_as, admin_limit, fresh_rate_window
):
    admin_limit(3)
    client = client_as("admin")

    statuses = [client.get(KEYS_URL).status_code for _ in range(4)]
    response = client.get(KEYS_URL)

    assert statuses == [200, 200, 200, 429]
    assert response.status_code == 429
    error = response.json()["error"]
    assert error["code"] == "rate_limit_exceeded"
    assert error["details"]["limit"] == 3
    assert error["details"]["remaining"] == 0
    assert error["details"]["reset"] == int(response["X-RateLimit-Reset"])
    assert 1 <= int(response["Retry-After"]) <= 60
    assert response["X-RateLimit-Remaining"] == "0"


@pytest.mark.django_db
def test_each_api_key_has_its_own_budget(client_as, admin_limit, fresh_rate_window):
    admin_limit(1)
    first, second = client_as("admin"), client_as("admin")

    assert first.get(KEYS_URL).status_code == 200
    assert second.get(KEYS_URL).status_code == 200
    assert first.get(KEYS_URL).status_code == 429


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_requests_against_a_limit_of_ten_yield_exactly_ten(
    live_server, make_api_key, admin_limit, fresh_rate_window
):
    admin_limit(10)
    key = make_api_key(["admin"])

    def call(_: int) -> int:
        return httpx.get(
            f"{live_server.url}{KEYS_URL}", headers={"X-API-KEY": key}, timeout=30
        ).status_code

    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(call, range(50)))

    assert statuses.count(200) == 10
    assert statuses.count(429) == 40


@pytest.mark.django_db
def test_redis_down_serves_requests_without_rate_limit_headers(client_as, settings, caplog):
    client = client_as("admin")
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"

    response = client.get(KEYS_URL)

    assert response.status_code == 200
    assert "X-RateLimit-Limit" not in response


@pytest.mark.django_db
def test_bad_credentials_count_against_the_client_address(api_client):
    response = api_client.get(KEYS_URL, HTTP_X_API_KEY="371os_nope_nope")

    assert response.status_code == 401
    assert response["X-RateLimit-Limit"] == "60"


@pytest.mark.parametrize(
    ("hops", "forwarded", "expected"),
    [
        (0, "203.0.113.9", "10.0.0.1"),
        (1, "203.0.113.9", "203.0.113.9"),
        (1, "198.51.100.7, 203.0.113.9", "203.0.113.9"),
        (2, "198.51.100.7, 203.0.113.9", "198.51.100.7"),
        (2, "203.0.113.9", "10.0.0.1"),
    ],
)
def test_client_ip_trusts_only_the_configured_number_of_proxies(
    settings, hops, forwarded, expected
):
    settings.TRUSTED_PROXY_COUNT = hops
    request = APIRequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded)

    assert client_ip(request) == expected
