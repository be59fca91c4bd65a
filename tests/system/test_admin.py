"""The back office: API keys made through the service and shown once; roles visible."""

import re

import pytest
from django.contrib.auth import get_user_model

from system.auth.services import api_key_create
from system.models import ApiKey

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


@pytest.fixture
def staff_client(client, make_user):
    superuser = make_user("chief", is_staff=True, is_superuser=True)
    client.force_login(superuser)
    return client, superuser


def test_adding_a_key_in_admin_shows_it_once_and_stores_its_hash(staff_client, api_client):
    client, superuser = staff_client

    response = client.post(
        "/admin/system/apikey/add/",
        {
            "name": "from admin",
            "owner": superuser.pk,
            "role_choices": ["admin"],
            "expires_at_0": "",
            "expires_at_1": "",
        },
        follow=True,
    )

    assert response.status_code == 200
    key = re.search(r"371os_[0-9a-f]+_[0-9a-f]+", response.content.decode()).group(0)
    assert "no-store" in response["Cache-Control"]
    assert api_client.get("/api/v1/auth/api-keys", HTTP_X_API_KEY=key).status_code == 200
    detail = client.get(f"/admin/system/apikey/{ApiKey.objects.get(name='from admin').pk}/change/")
    assert key.split("_")[2] not in detail.content.decode()


def test_revoke_action_revokes_the_selected_keys(staff_client):
    client, superuser = staff_client
    api_key, _ = api_key_create(name="old", owner=superuser, roles=["messaging"])

    client.post(
        "/admin/system/apikey/",
        {"action": "revoke", "_selected_action": [api_key.pk]},
    )

    api_key.refresh_from_db()
    assert api_key.revoked_at is not None


def test_key_list_filters_by_role(staff_client):
    client, superuser = staff_client
    api_key_create(name="monitor-key", owner=superuser, roles=["system_monitor"])
    api_key_create(name="messaging-key", owner=superuser, roles=["messaging", "admin"])

    page = client.get("/admin/system/apikey/?role=messaging").content.decode()

    assert "messaging-key" in page
    assert "monitor-key" not in page


def test_user_list_shows_roles(staff_client, make_user):
    client, _ = staff_client
    make_user("mona", roles=("system_monitor", "messaging"))

    page = client.get("/admin/auth/user/").content.decode()

    assert "messaging, system_monitor" in page
    assert get_user_model().objects.filter(username="mona").exists()
