"""/api/v1/webhooks: create (the secret shown once), validate (nothing written when invalid),
list, read, change, delete; another principal's endpoint is 404, roles per the policy."""

import pytest
from rest_framework.test import APIClient

from system.models import ApiKey, WebhookEndpoint

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

URL = "/api/v1/webhooks"
HOOK = "http://127.0.0.1:9/hook"


@pytest.fixture(autouse=True)
def loopback_receivers(settings):
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_ALLOW_PRIVATE = True


@pytest.fixture
def caller(make_user, make_api_key):
    """caller("messaging") → (client, user, api key row) of a new key of a new user."""

    def make(*roles: str):
        user = make_user(roles=roles)
        key = make_api_key(list(roles), owner=user)
        client = APIClient()
        client.credentials(HTTP_X_API_KEY=key)
        return client, user, ApiKey.objects.get(owner=user)

    return make


def create(client, **body):
    return client.post(URL, {"url": HOOK, "event_types": ["new_message"], **body}, format="json")


def test_create_answers_201_with_the_endpoint_and_its_secret(caller):
    client, user, key = caller("messaging")
    agent = "5f0c2b8e-3a4d-4c1e-9b7a-2d6e8f1a0c3b"

    response = create(
        client,
        event_types=["agent_status_update", "workflow_update"],
        filter={"agent_id": agent},
        description="CI hook",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    endpoint = WebhookEndpoint.objects.get(pk=body["id"])
    assert body["secret"] == endpoint.secret
    assert body["secret"].startswith("whsec_")
    assert body["url"] == HOOK
    assert body["event_types"] == ["agent_status_update", "workflow_update"]
    assert body["filter"] == {"agent_id": agent}
    assert body["description"] == "CI hook"
    assert body["enabled"] is True
    assert body["disabled_reason"] == ""
    assert body["failing_since"] is None
    assert endpoint.owner_id == user.pk
    assert endpoint.api_key_id == key.pk


def test_the_secret_is_never_in_a_read_or_a_list(caller):
    client, _, _ = caller("messaging")
    created = create(client).json()

    one = client.get(f"{URL}/{created['id']}")
    listed = client.get(URL)

    assert one.status_code == listed.status_code == 200
    assert "secret" not in one.json()
    assert created["secret"] not in one.content.decode()
    assert created["secret"] not in listed.content.decode()
    assert [w["id"] for w in listed.json()["webhooks"]] == [created["id"]]


def test_star_receives_every_event_type(caller):
    client, _, _ = caller("agent_manager")

    response = create(client, event_types=["*"])

    assert response.status_code == 201
    assert response.json()["event_types"] == ["*"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"event_types": ["no_such_event"]}, "event_types"),
        ({"event_types": []}, "event_types"),
        ({"event_types": ["*", "new_message"]}, "event_types"),
        ({"event_types": ["new_message"] * 51}, "event_types"),
        ({"event_types": "new_message"}, "event_types"),
        ({"filter": {"user_id": "5f0c2b8e-3a4d-4c1e-9b7a-2d6e8f1a0c3b"}}, "filter.user_id"),
        ({"filter": {"agent_id": "ceo"}}, "filter.agent_id"),
        ({"filter": ["agent_id"]}, "filter"),
        ({"description": "x" * 501}, "description"),
        ({"url": ""}, "url"),
        ({"url": 7}, "url"),
        ({"url": "ftp://127.0.0.1/hook"}, "url"),
    ],
)
def test_an_invalid_create_is_400_naming_the_field_and_writes_nothing(caller, body, field):
    client, _, _ = caller("messaging")

    response = create(client, **body)

    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["details"]
    assert not WebhookEndpoint.objects.exists()


def test_an_unknown_event_type_is_refused_listing_the_valid_ones(caller):
    client, _, _ = caller("messaging")

    error = create(client, event_types=["agent_status"]).json()["error"]

    assert error["code"] == "validation_error"
    assert "agent_status_update" in error["details"]["valid_event_types"]
    assert "webhook.test" in error["details"]["valid_event_types"]


def test_a_private_address_is_refused_without_webhook_allow_private(caller, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    client, _, _ = caller("messaging")

    response = create(client, url="http://10.0.0.8/hook")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_webhook_url"
    assert not WebhookEndpoint.objects.exists()


def test_http_is_refused_without_webhook_allow_http(caller, settings):
    settings.WEBHOOK_ALLOW_HTTP = False
    client, _, _ = caller("messaging")

    response = create(client)

    assert response.status_code == 400
    assert response.json()["error"]["details"]["url"]
    assert not WebhookEndpoint.objects.exists()


def test_an_owner_at_the_cap_gets_422_and_nothing_is_written(caller, settings):
    settings.WEBHOOK_MAX_ENDPOINTS_PER_OWNER = 2
    client, user, _ = caller("messaging")
    other, _, _ = caller("messaging")
    assert create(client).status_code == create(client).status_code == 201

    response = create(client)

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "webhook_limit_reached"
    assert WebhookEndpoint.objects.filter(owner=user).count() == 2
    assert create(other).status_code == 201  # the cap is per owner


def test_the_list_is_the_callers_own_and_an_admins_is_everyones(caller):
    alice, _, _ = caller("messaging")
    bob, _, _ = caller("agent_manager")
    admin, _, _ = caller("admin")
    mine = create(alice).json()["id"]
    theirs = create(bob).json()["id"]

    own = alice.get(URL).json()
    every = admin.get(URL).json()

    assert [w["id"] for w in own["webhooks"]] == [mine]
    assert own["pagination"] == {"page": 1, "limit": 20, "total": 1}
    assert {w["id"] for w in every["webhooks"]} == {mine, theirs}


def test_the_list_pages(caller):
    client, _, _ = caller("messaging")
    ids = [create(client).json()["id"] for _ in range(3)]

    first = client.get(URL, {"limit": 2}).json()
    second = client.get(URL, {"limit": 2, "page": 2}).json()

    assert first["pagination"]["total"] == 3
    assert [w["id"] for w in first["webhooks"] + second["webhooks"]] == ids[::-1]


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", ""),
        ("patch", ""),
        ("delete", ""),
        ("post", "/rotate-secret"),
        ("post", "/test"),
        ("get", "/deliveries"),
    ],
)
def test_another_principals_endpoint_is_404(caller, method, path):
    owner, _, _ = caller("messaging")
    stranger, _, _ = caller("agent_manager")
    endpoint_id = create(owner).json()["id"]

    response = getattr(stranger, method)(f"{URL}/{endpoint_id}{path}", {}, format="json")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "webhook_not_found"
    assert WebhookEndpoint.objects.filter(pk=endpoint_id, enabled=True).exists()


def test_an_admin_reaches_anyones_endpoint(caller):
    owner, _, _ = caller("messaging")
    admin, _, _ = caller("admin")
    endpoint_id = create(owner).json()["id"]

    assert admin.get(f"{URL}/{endpoint_id}").status_code == 200
    assert admin.delete(f"{URL}/{endpoint_id}").status_code == 204


def test_a_key_of_the_same_user_sees_the_users_endpoints(caller, make_api_key):
    client, user, _ = caller("messaging")
    endpoint_id = create(client).json()["id"]
    second = APIClient()
    second.credentials(HTTP_X_API_KEY=make_api_key(["messaging"], owner=user))

    assert second.get(f"{URL}/{endpoint_id}").status_code == 200


def test_system_monitor_may_not_use_webhooks(caller):
    client, _, _ = caller("system_monitor")

    listed = client.get(URL)
    created = create(client)

    assert listed.status_code == created.status_code == 403
    assert created.json()["error"]["details"]["action"] == "webhooks.create"
    assert not WebhookEndpoint.objects.exists()


def test_anonymous_is_401(api_client):
    assert api_client.get(URL).status_code == 401


def test_patch_changes_what_is_given(caller):
    client, _, _ = caller("messaging")
    endpoint_id = create(client, description="old").json()["id"]

    response = client.patch(
        f"{URL}/{endpoint_id}",
        {
            "url": "http://127.0.0.1:10/other",
            "event_types": ["*"],
            "filter": {"channel_id": "5f0c2b8e-3a4d-4c1e-9b7a-2d6e8f1a0c3b"},
        },
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["url"] == "http://127.0.0.1:10/other"
    assert body["event_types"] == ["*"]
    assert body["filter"] == {"channel_id": "5f0c2b8e-3a4d-4c1e-9b7a-2d6e8f1a0c3b"}
    assert body["description"] == "old"
    assert "secret" not in body


def test_patch_checks_a_new_url_again_and_changes_nothing_when_refused(caller, settings):
    client, _, _ = caller("messaging")
    endpoint_id = create(client).json()["id"]
    settings.WEBHOOK_ALLOW_PRIVATE = False

    response = client.patch(
        f"{URL}/{endpoint_id}",
        {"url": "http://192.168.1.4/hook", "description": "changed"},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_webhook_url"
    endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
    assert (endpoint.url, endpoint.description) == (HOOK, "")


def test_disabling_says_why_and_re_enabling_clears_the_failure_state(caller):
    client, _, _ = caller("messaging")
    endpoint_id = create(client).json()["id"]
    disabled = client.patch(f"{URL}/{endpoint_id}", {"enabled": False}, format="json").json()
    # As the delivery health check leaves an endpoint that failed for days:
    WebhookEndpoint.objects.filter(pk=endpoint_id).update(
        disabled_reason="Failing since Monday.", failing_since="2026-11-23T10:00:00Z"
    )

    enabled = client.patch(f"{URL}/{endpoint_id}", {"enabled": True}, format="json").json()

    assert disabled["enabled"] is False
    assert disabled["disabled_reason"]
    assert enabled["enabled"] is True
    assert enabled["disabled_reason"] == ""
    assert enabled["failing_since"] is None


def test_patch_refuses_a_non_boolean_enabled(caller):
    client, _, _ = caller("messaging")
    endpoint_id = create(client).json()["id"]

    response = client.patch(f"{URL}/{endpoint_id}", {"enabled": "yes"}, format="json")

    assert response.status_code == 400
    assert WebhookEndpoint.objects.get(pk=endpoint_id).enabled is True


def test_delete_answers_204_and_the_endpoint_is_gone(caller):
    client, _, _ = caller("messaging")
    endpoint_id = create(client).json()["id"]

    response = client.delete(f"{URL}/{endpoint_id}")

    assert response.status_code == 204
    assert client.get(f"{URL}/{endpoint_id}").status_code == 404
    assert not WebhookEndpoint.objects.exists()


def test_a_malformed_id_is_404(caller):
    client, _, _ = caller("messaging")

    assert client.get(f"{URL}/not-a-uuid").status_code == 404


def test_a_null_filter_means_none(caller):
    client, _, _ = caller("messaging")

    response = create(client, filter=None)

    assert response.status_code == 201, response.content
    assert response.json()["filter"] == {}
