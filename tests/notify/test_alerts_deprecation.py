"""Email alerts for deprecated endpoints: the first call of the day by a principal mails its
user (a standalone key: its creator), naming the endpoint and its Sunset date."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from rest_framework.test import APIClient

from system.auth.services import api_key_create
from system.kernel.principal import principal_for_user
from system.models import AlertSent, ApiKey, EventLogEntry
from system.realtime.access import Access, grants_for
from tests.notify import alerts_fixtures

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

# Fixtures shared with the other alert tests (pytest finds them as module attributes).
_fresh_deprecation_counters = alerts_fixtures._fresh_deprecation_counters
locmem_email = alerts_fixtures.locmem_email

ACTIVE = "/api/v1/agents/active"


def key_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"ApiKey {key}")
    return client


@pytest.fixture
def alice(make_user):
    return make_user("alice", roles=("agent_manager",), email="alice@example.com")


@pytest.fixture
def alice_key(alice):
    return api_key_create(name="ci job", roles=["agent_manager"], owner=alice)[1]


def call(client: APIClient, times: int, capture):
    for _ in range(times):
        with capture(execute=True):
            response = client.get(ACTIVE)
        assert response.status_code == 200
    return response


def test_fifty_calls_by_one_key_send_one_email_naming_endpoint_and_sunset(
    locmem_email, alice_key, django_capture_on_commit_callbacks
):
    sunset = call(key_client(alice_key), 50, django_capture_on_commit_callbacks)["Sunset"]

    assert len(locmem_email) == 1
    email = locmem_email[0]
    assert email.to == ["alice@example.com"]
    assert "GET /api/v1/agents/active" in email.subject
    assert "GET /api/v1/agents/active" in email.body
    assert sunset in email.body
    assert 'Your API key "ci job"' in email.body
    assert "http://localhost:8000/api/docs/deprecations#deprecations" in email.body
    html, mimetype = email.alternatives[0]
    assert mimetype == "text/html"
    assert sunset in html and "/api/v1/auth/me/notifications" in html
    assert AlertSent.objects.get().sent_at is not None


def test_the_email_counts_the_calls_made_before_it_is_sent(
    locmem_email, alice_key, django_capture_on_commit_callbacks
):
    client = key_client(alice_key)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert client.get(ACTIVE).status_code == 200
    call(client, 6, django_capture_on_commit_callbacks)
    assert locmem_email == []

    for callback in callbacks:  # the alert's send, published after its commit, runs now
        callback()

    assert "Calls today (UTC, " in locmem_email[0].body
    assert ": 7 so far." in locmem_email[0].body


def test_the_alert_is_an_event_only_its_recipient_sees(
    locmem_email, alice, alice_key, make_user, django_capture_on_commit_callbacks
):
    call(key_client(alice_key), 2, django_capture_on_commit_callbacks)

    event = EventLogEntry.objects.get(event_type="alert_sent")
    alert = AlertSent.objects.get()
    assert event.owner_id == alice.pk
    assert event.payload == {
        "kind": "deprecated_endpoint",
        "subject": f"key:{alert_key_id(alice_key)} GET /api/v1/agents/active",
        "alert_id": alert.pk,
        "day": alert.day.isoformat(),
    }
    assert "alice@example.com" not in str(event.payload)
    seen = EventLogEntry.objects.filter(event_type="alert_sent")
    assert seen.filter(_log_filter(alice)).count() == 1  # the WebSocket replay's rule
    assert seen.filter(_log_filter(make_user("mallory", roles=("agent_manager",)))).count() == 0


def _log_filter(user):
    principal = principal_for_user(user)
    return Access(principal, grants_for(principal), ttl=1.0).log_filter()


def alert_key_id(key: str) -> int:
    return ApiKey.objects.get(prefix=key.split("_")[1]).pk


def test_a_second_key_gets_its_own_email(
    locmem_email, alice, alice_key, django_capture_on_commit_callbacks
):
    other = api_key_create(name="cron", roles=["agent_manager"], owner=alice)[1]

    call(key_client(alice_key), 3, django_capture_on_commit_callbacks)
    call(key_client(other), 3, django_capture_on_commit_callbacks)

    assert len(locmem_email) == 2
    assert 'Your API key "ci job"' in locmem_email[0].body
    assert 'Your API key "cron"' in locmem_email[1].body


def test_the_next_day_brings_one_more_email(
    locmem_email, alice_key, django_capture_on_commit_callbacks
):
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    client = key_client(alice_key)
    with time_machine.travel(today, tick=False):
        call(client, 5, django_capture_on_commit_callbacks)
    with time_machine.travel(today + timedelta(days=1), tick=False):
        call(client, 5, django_capture_on_commit_callbacks)

    assert len(locmem_email) == 2
    assert sorted(a.day for a in AlertSent.objects.all()) == [
        today.date(),
        today.date() + timedelta(days=1),
    ]


def test_a_standalone_key_mails_its_creator(
    locmem_email, alice, django_capture_on_commit_callbacks
):
    key = api_key_create(name="robot", roles=["agent_manager"], created_by=alice)[1]

    call(key_client(key), 2, django_capture_on_commit_callbacks)

    assert [e.to for e in locmem_email] == [["alice@example.com"]]
    assert 'Your API key "robot" (key:' in locmem_email[0].body


def test_a_jwt_user_is_mailed_too(locmem_email, alice, django_capture_on_commit_callbacks):
    token = APIClient().post(
        "/api/v1/auth/token", {"username": "alice", "password": "pw-123456!"}, format="json"
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.json()['access']}")

    call(client, 2, django_capture_on_commit_callbacks)

    assert [e.to for e in locmem_email] == [["alice@example.com"]]
    assert "Your account (alice)" in locmem_email[0].body


def test_a_user_without_email_gets_no_alert_and_no_error(
    locmem_email, make_user, django_capture_on_commit_callbacks
):
    key = api_key_create(name="k", roles=["agent_manager"], owner=make_user("bob"))[1]

    call(key_client(key), 3, django_capture_on_commit_callbacks)

    assert locmem_email == []
    assert not AlertSent.objects.exists()


def test_without_redis_the_request_still_succeeds(
    locmem_email, alice_key, settings, django_capture_on_commit_callbacks
):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there

    call(key_client(alice_key), 2, django_capture_on_commit_callbacks)

    assert locmem_email == []
