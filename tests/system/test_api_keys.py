"""API keys: made once, stored as a hash, accepted in two headers, revocable, expiring."""

import hashlib
from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from system.models import ApiKey

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

KEYS_URL = "/api/v1/auth/api-keys"


def create_key(client, **body):
    payload = {"name": "ci", "roles": ["messaging"], **body}
    return client.post(KEYS_URL, payload, format="json")


def test_admin_creates_a_key_shown_once_and_stored_only_as_a_hash(client_as):
    response = create_key(client_as("admin"), name="deploy bot", roles=["agent_manager"])

    assert response.status_code == 201
    body = response.json()
    key = body["key"]
    assert body["roles"] == ["agent_manager"]
    row = ApiKey.objects.get(pk=body["id"])
    secret = key.split("_")[2]
    stored = " ".join(str(value) for value in row.__dict__.values())
    assert secret not in stored
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()


def test_listing_keys_never_shows_a_secret_or_its_hash(client_as):
    admin = client_as("admin")
    key = create_key(admin).json()["key"]

    listing = admin.get(KEYS_URL)

    assert listing.status_code == 200
    text = listing.content.decode()
    assert key.split("_")[2] not in text
    assert "secret" not in text
    assert listing.json()["pagination"]["total"] == 2  # the admin's own key and the new one


@pytest.mark.parametrize("header", ["HTTP_AUTHORIZATION", "HTTP_X_API_KEY"])
def test_key_is_accepted_in_authorization_and_x_api_key_headers(api_client, make_api_key, header):
    key = make_api_key(["admin"])
    value = f"ApiKey {key}" if header == "HTTP_AUTHORIZATION" else key

    response = api_client.get(KEYS_URL, **{header: value})

    assert response.status_code == 200


def test_wrong_secret_with_a_valid_prefix_is_rejected(api_client, make_api_key):
    name, prefix, secret = make_api_key(["admin"]).split("_")
    wrong = f"{name}_{prefix}_{'0' * len(secret)}"

    response = api_client.get(KEYS_URL, HTTP_AUTHORIZATION=f"ApiKey {wrong}")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"
    assert response["WWW-Authenticate"]


def test_revoked_key_is_rejected_from_the_next_request(client_as, api_client, make_api_key):
    key = make_api_key(["admin"])
    api_client.credentials(HTTP_AUTHORIZATION=f"ApiKey {key}")
    assert api_client.get(KEYS_URL).status_code == 200
    key_id = ApiKey.objects.get(prefix=key.split("_")[1]).pk

    revoked = client_as("admin").post(f"{KEYS_URL}/{key_id}/revoke")

    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert api_client.get(KEYS_URL).status_code == 401


def test_expired_key_is_rejected(api_client, make_api_key):
    key = make_api_key(["admin"], expires_at=timezone.now() + timedelta(days=1))
    api_client.credentials(HTTP_AUTHORIZATION=f"ApiKey {key}")

    with time_machine.travel(timezone.now() + timedelta(days=1, seconds=1)):
        response = api_client.get(KEYS_URL)

    assert response.status_code == 401


def test_revoking_an_unknown_key_is_404(client_as):
    response = client_as("admin").post(f"{KEYS_URL}/999999/revoke")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_unknown_role_is_a_validation_error(client_as):
    response = create_key(client_as("admin"), roles=["superhero"])

    assert response.status_code == 400
    assert "roles" in response.json()["error"]["details"]


def test_expiry_in_the_past_is_a_validation_error(client_as):
    response = create_key(client_as("admin"), expires_at="2001-01-01T00:00:00Z")

    assert response.status_code == 400
    assert "expires_at" in response.json()["error"]["details"]


def test_non_admin_cannot_manage_keys(client_as):
    response = create_key(client_as("agent_manager"))

    assert response.status_code == 403
    assert response.json()["error"]["details"]["action"] == "auth.api_keys.create"


def test_use_of_a_key_records_last_used_at(api_client, make_api_key):
    key = make_api_key(["admin"])

    api_client.get(KEYS_URL, HTTP_X_API_KEY=key)

    assert ApiKey.objects.get(prefix=key.split("_")[1]).last_used_at is not None


def test_create_api_key_command_prints_the_key_alone_on_the_last_line(api_client):
    out = StringIO()

    call_command(
        "create_api_key", "--name", "ops", "--role", "admin", "--role", "messaging",
        "--user", "robot", "--expires-days", "30", stdout=out, stderr=StringIO(),
    )  # fmt: skip

    key = out.getvalue().strip().splitlines()[-1]
    assert key.startswith("371os_")
    assert api_client.get(KEYS_URL, HTTP_X_API_KEY=key).status_code == 200
    robot = get_user_model().objects.get(username="robot")
    assert not robot.has_usable_password()
    row = ApiKey.objects.get(owner=robot)
    assert row.role_set == {"admin", "messaging"}
    assert row.expires_at > timezone.now() + timedelta(days=29)
