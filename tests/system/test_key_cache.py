"""A verified API key is reused for at most a second per process (system.auth.keycache): most
requests authenticate with no query, and nothing a key may no longer do outlives that second."""

import time
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from system.auth.services import api_key_revoke
from system.models import ApiKey

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

URL = "/api/v1/agents"


def client_for(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=key)
    return client


def key_queries(client) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as queries:
        status = client.get(URL).status_code
    return status, sum("system_apikey" in q["sql"] for q in queries.captured_queries)


def test_a_key_verified_a_moment_ago_costs_no_query(make_api_key):
    client = client_for(make_api_key(["admin"]))

    assert key_queries(client)[0] == 200
    assert key_queries(client) == (200, 0)


def test_a_revocation_in_this_process_applies_to_the_next_request(make_api_key):
    key = make_api_key(["admin"])
    client = client_for(key)
    assert client.get(URL).status_code == 200

    api_key_revoke(api_key=ApiKey.objects.get(prefix=key.split("_")[1]))

    assert client.get(URL).status_code == 401


def test_a_role_taken_from_the_owner_in_this_process_applies_at_once(make_user, make_api_key):
    owner = make_user(roles=("agent_manager",))
    client = client_for(make_api_key(["agent_manager"], owner=owner, created_by=owner))
    assert client.get(URL).status_code == 200

    owner.groups.remove(Group.objects.get(name="agent_manager"))

    assert client.get(URL).status_code == 403


def test_a_revocation_made_elsewhere_applies_within_the_cache_lifetime(settings, make_api_key):
    """Another process's revocation reaches this one through the database only: a row
    updated without this process's signals, as another process's write looks from here."""
    settings.API_KEY_CACHE_SECONDS = 0.2
    key = make_api_key(["admin"])
    client = client_for(key)
    assert client.get(URL).status_code == 200

    ApiKey.objects.filter(prefix=key.split("_")[1]).update(revoked_at=timezone.now())
    time.sleep(0.25)

    assert client.get(URL).status_code == 401


def test_the_lifetime_is_never_above_one_second(settings, make_api_key):
    settings.API_KEY_CACHE_SECONDS = 3600
    key = make_api_key(["admin"])
    client = client_for(key)
    assert client.get(URL).status_code == 200

    ApiKey.objects.filter(prefix=key.split("_")[1]).update(revoked_at=timezone.now())
    time.sleep(1.05)

    assert client.get(URL).status_code == 401


def test_a_key_expiring_between_two_requests_is_refused_though_cached(make_api_key):
    client = client_for(make_api_key(["admin"], expires_at=timezone.now() + timedelta(hours=1)))
    assert client.get(URL).status_code == 200

    with time_machine.travel(timezone.now() + timedelta(hours=1, seconds=1)):
        assert client.get(URL).status_code == 401


def test_a_wrong_secret_with_a_cached_prefix_is_refused(make_api_key):
    key = make_api_key(["admin"])
    assert client_for(key).get(URL).status_code == 200
    prefix = key.split("_")[1]

    assert client_for(f"371os_{prefix}_{'0' * 64}").get(URL).status_code == 401


def test_last_used_is_stamped_once_however_many_cached_requests(make_api_key):
    key = make_api_key(["admin"])
    client = client_for(key)
    for _ in range(5):
        assert client.get(URL).status_code == 200
    stamped = ApiKey.objects.get(prefix=key.split("_")[1]).last_used_at

    with CaptureQueriesContext(connection) as queries:
        client.get(URL)

    assert stamped is not None
    assert not [q for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
