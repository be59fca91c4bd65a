"""GET/PATCH /api/v1/auth/me/notifications: the caller's own email alerts, on or off."""

import pytest
from rest_framework.test import APIClient

from system.auth.services import api_key_create
from system.models import AlertSent, NotificationSettings
from tests.notify import alerts_fixtures

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

# Fixtures shared with the other alert tests (pytest finds them as module attributes).
_fresh_deprecation_counters = alerts_fixtures._fresh_deprecation_counters
locmem_email = alerts_fixtures.locmem_email

URL = "/api/v1/auth/me/notifications"
ALL_ON = {
    "deprecated_endpoint": True,
    "agent_error": True,
    "budget_reached": True,
    "webhook_disabled": True,
}


@pytest.fixture
def dave(make_user):
    return make_user("dave", roles=("messaging",), email="dave@example.com")


@pytest.fixture
def dave_client(dave) -> APIClient:
    client = APIClient()
    key = api_key_create(name="dave's", roles=["messaging"], owner=dave)[1]
    client.credentials(HTTP_AUTHORIZATION=f"ApiKey {key}")
    return client


def test_get_shows_the_email_and_every_kind_on(dave_client):
    response = dave_client.get(URL)

    assert response.status_code == 200
    assert response.json() == {"email": "dave@example.com", "alerts": ALL_ON}


def test_patch_turns_a_kind_off_and_keeps_the_others(dave_client, dave):
    response = dave_client.patch(URL, {"alerts": {"agent_error": False}}, format="json")

    assert response.status_code == 200
    assert response.json()["alerts"] == {**ALL_ON, "agent_error": False}
    assert dave_client.get(URL).json()["alerts"] == {**ALL_ON, "agent_error": False}
    again = dave_client.patch(URL, {"alerts": {"agent_error": True}}, format="json")
    assert again.json()["alerts"] == ALL_ON
    assert NotificationSettings.objects.get(user=dave).disabled_alerts == []


def test_an_unknown_kind_is_refused_listing_the_valid_ones_and_nothing_changes(dave_client, dave):
    response = dave_client.patch(
        URL, {"alerts": {"agent_error": False, "sms": True}}, format="json"
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    message = str(error["details"]["alerts"])
    assert "sms" in message and "deprecated_endpoint, agent_error" in message
    assert not NotificationSettings.objects.filter(user=dave).exists()


@pytest.mark.parametrize(
    "body",
    [
        {"alerts": "off"},
        {"alerts": {"agent_error": "maybe"}},
        {"alerts": {"agent_error": None}},
    ],
)
def test_a_malformed_body_is_refused(dave_client, body):
    response = dave_client.patch(URL, body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


def test_an_empty_patch_changes_nothing_and_answers_the_settings(dave_client):
    dave_client.patch(URL, {"alerts": {"agent_error": False}}, format="json")

    response = dave_client.patch(URL, {}, format="json")

    assert response.status_code == 200
    assert response.json()["alerts"]["agent_error"] is False
    assert response.json()["alerts"]["budget_reached"] is True


def test_without_credentials_it_is_401():
    assert APIClient().get(URL).status_code == 401


def test_a_user_without_email_reads_null(client_as):
    assert client_as("system_monitor").get(URL).json()["email"] is None


def test_turning_deprecation_alerts_off_stops_them(
    locmem_email, dave_client, django_capture_on_commit_callbacks, make_user
):
    dave_client.patch(URL, {"alerts": {"deprecated_endpoint": False}}, format="json")
    erin = APIClient()
    erin.credentials(
        HTTP_AUTHORIZATION="ApiKey "
        + api_key_create(
            name="erin's",
            roles=["agent_manager"],
            owner=make_user("erin", roles=("agent_manager",), email="erin@example.com"),
        )[1]
    )

    with django_capture_on_commit_callbacks(execute=True):
        assert dave_client.get("/api/v1/agents/active").status_code == 200
        assert erin.get("/api/v1/agents/active").status_code == 200

    assert [e.to for e in locmem_email] == [["erin@example.com"]]
    assert list(AlertSent.objects.values_list("recipient__username", flat=True)) == ["erin"]


def test_the_settings_are_in_the_schema():
    schema = APIClient().get("/api/schema/?format=json").json()

    operation = schema["paths"][URL]["patch"]
    assert operation["tags"] == ["auth"]
    assert "400" in operation["responses"]
    assert schema["paths"][URL]["get"]["summary"] == "Get your email alert settings"
