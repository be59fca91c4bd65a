"""API keys in the back office: the owner defaults to the staff member, the secret is shown
once on the page after a redirect, and revoked keys stay on the list."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.contrib.sessions.models import Session as DjangoSession
from django.test import Client
from django.utils import timezone

from system.auth.services import api_key_create, api_key_revoke
from system.models import ApiKey

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

KEY = re.compile(r"371os_[0-9a-f]+_[0-9a-f]+")


@pytest.fixture
def chief(client, make_user):
    user = make_user("chief", is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


def add_key(client, **fields):
    data = {"name": "from admin", "role_choices": ["messaging"], **fields}
    return client.post(
        "/admin/system/apikey/add/", {"expires_at_0": "", "expires_at_1": "", **data}
    )


def test_add_form_preselects_the_staff_member_as_owner(client, chief, make_user):
    make_user("someone-else")

    page = client.get("/admin/system/apikey/add/").content.decode()

    assert re.search(rf'<option value="{chief.pk}" selected>chief</option>', page)


def test_saving_a_key_redirects_to_a_page_that_shows_the_secret_once(client, chief, api_client):
    response = add_key(client, owner=chief.pk, role_choices=["admin"])

    api_key = ApiKey.objects.get(name="from admin")
    assert response.status_code == 302
    assert response["Location"] == f"/admin/system/apikey/{api_key.pk}/created/"
    assert not KEY.search(response.content.decode())
    first = client.get(response["Location"])
    key = KEY.search(first.content.decode()).group(0)
    assert "no-store" in first["Cache-Control"]
    assert api_client.get("/api/v1/auth/api-keys", HTTP_X_API_KEY=key).status_code == 200
    reload = client.get(response["Location"])
    assert reload.status_code == 200
    assert not KEY.search(reload.content.decode())
    assert "cannot be shown again" in reload.content.decode()


def test_after_the_one_read_the_secret_is_nowhere_in_the_session_or_the_database(client, chief):
    response = add_key(client, owner=chief.pk)
    key = KEY.search(client.get(response["Location"]).content.decode()).group(0)
    secret = key.split("_")[2]

    stored = [s.get_decoded() for s in DjangoSession.objects.all()]
    assert secret not in repr(stored)
    assert secret not in repr(list(ApiKey.objects.values()))


def test_a_secret_nobody_came_to_read_is_dropped_after_five_minutes(client, chief):
    response = add_key(client, owner=chief.pk)

    with time_machine.travel(timezone.now() + timedelta(minutes=6)):
        late = client.get(response["Location"]).content.decode()
        add_key(client, owner=chief.pk, name="second")  # any later write prunes the store

    assert not KEY.search(late)
    stored = repr([s.get_decoded() for s in DjangoSession.objects.all()])
    assert len(KEY.findall(stored)) == 1  # only the second key still waits to be read


def test_a_secret_is_shown_only_in_the_session_that_made_it(client, chief, make_user):
    response = add_key(client, owner=chief.pk)
    other = Client()
    other.force_login(make_user("deputy", is_staff=True, is_superuser=True))

    page = other.get(response["Location"]).content.decode()

    assert not KEY.search(page)
    assert KEY.search(client.get(response["Location"]).content.decode())


def test_revoked_keys_stay_listed_with_a_badge_and_a_filter(client, chief):
    api_key_create(name="live-key", owner=chief, roles=["messaging"])
    gone, _ = api_key_create(name="gone-key", owner=chief, roles=["messaging"])
    api_key_revoke(api_key=gone)

    everything = client.get("/admin/system/apikey/").content.decode()
    revoked_only = client.get("/admin/system/apikey/?revoked=yes").content.decode()

    assert "live-key" in everything and "gone-key" in everything
    assert 'class="apikey-state apikey-revoked"' in everything
    assert "gone-key" in revoked_only and "live-key" not in revoked_only


def test_the_key_list_offers_revoke_and_no_delete(client, chief):
    api_key_create(name="live-key", owner=chief, roles=["messaging"])

    page = client.get("/admin/system/apikey/").content.decode()

    assert 'value="revoke"' in page
    assert 'value="delete_selected"' not in page
