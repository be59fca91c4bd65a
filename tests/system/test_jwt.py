"""JWT: obtain, use, expire, tamper, refresh with rotation, revoke."""

import base64
import json
from datetime import timedelta

import jwt
import pytest
import time_machine
from django.conf import settings
from django.utils import timezone

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

TOKEN_URL = "/api/v1/auth/token"
PROTECTED_URL = "/api/v1/auth/api-keys"


@pytest.fixture
def admin_user(make_user):
    return make_user("root", roles=("admin",), password="correct horse")


def obtain(api_client, username="root", password="correct horse"):
    return api_client.post(TOKEN_URL, {"username": username, "password": password}, format="json")


def bearer(api_client, token: str):
    return api_client.get(PROTECTED_URL, HTTP_AUTHORIZATION=f"Bearer {token}")


def test_obtain_returns_the_token_pair_with_roles_issuer_and_audience(api_client, admin_user):
    response = obtain(api_client)

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 15 * 60
    claims = jwt.decode(
        body["access"],
        settings.JWT_SIGNING_KEY,
        algorithms=["HS256"],
        audience="371os-api",
        issuer="371os",
    )
    assert claims["roles"] == ["admin"]
    assert bearer(api_client, body["access"]).status_code == 200


def test_superuser_holds_the_admin_role(api_client, make_user):
    make_user("boss", password="pw-boss-1", is_superuser=True)

    access = obtain(api_client, "boss", "pw-boss-1").json()["access"]

    assert bearer(api_client, access).status_code == 200


def test_bad_credentials_return_401_invalid_credentials(api_client, admin_user):
    response = obtain(api_client, password="wrong")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_credentials"


def test_token_endpoint_is_throttled_per_client_ip(api_client, admin_user, fresh_rate_window):
    answers = [obtain(api_client, password="guess").status_code for _ in range(11)]

    assert answers == [401] * 10 + [429]
    assert obtain(api_client).status_code == 429  # even the right password, until the reset


def test_expired_access_token_is_rejected(api_client, admin_user):
    access = obtain(api_client).json()["access"]

    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        response = bearer(api_client, access)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_expired"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_tampered_access_token_is_rejected(api_client, admin_user):
    header, payload, signature = obtain(api_client).json()["access"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["roles"] = ["admin", "system_monitor"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")

    assert bearer(api_client, f"{header}.{forged}.{signature}").status_code == 401


def test_alg_none_token_is_rejected(api_client, admin_user):
    claims = jwt.decode(obtain(api_client).json()["access"], options={"verify_signature": False})
    unsigned = jwt.encode(claims, key=None, algorithm="none")

    assert bearer(api_client, unsigned).status_code == 401


def test_token_for_another_audience_is_rejected(api_client, admin_user):
    claims = jwt.decode(obtain(api_client).json()["access"], options={"verify_signature": False})
    claims["aud"] = "some-other-service"
    foreign = jwt.encode(claims, settings.JWT_SIGNING_KEY, algorithm="HS256")

    assert bearer(api_client, foreign).status_code == 401


def test_refresh_rotates_and_the_old_refresh_token_cannot_be_reused(api_client, admin_user):
    first = obtain(api_client).json()

    rotated = api_client.post(TOKEN_URL + "/refresh", {"refresh": first["refresh"]}, format="json")
    reused = api_client.post(TOKEN_URL + "/refresh", {"refresh": first["refresh"]}, format="json")

    assert rotated.status_code == 200
    assert rotated.json()["refresh"] != first["refresh"]
    assert bearer(api_client, rotated.json()["access"]).status_code == 200
    assert reused.status_code == 401
    assert reused.json()["error"]["code"] == "invalid_token"


def test_access_token_is_not_accepted_as_a_refresh_token(api_client, admin_user):
    access = obtain(api_client).json()["access"]

    response = api_client.post(TOKEN_URL + "/refresh", {"refresh": access}, format="json")

    assert response.status_code == 401


def test_revoked_refresh_token_cannot_refresh(api_client, admin_user):
    refresh = obtain(api_client).json()["refresh"]

    revoked = api_client.post(TOKEN_URL + "/revoke", {"refresh": refresh}, format="json")
    again = api_client.post(TOKEN_URL + "/revoke", {"refresh": refresh}, format="json")
    response = api_client.post(TOKEN_URL + "/refresh", {"refresh": refresh}, format="json")

    assert revoked.status_code == 200
    assert revoked.json() == {"revoked": True}
    assert again.status_code == 200
    assert response.status_code == 401


def test_refresh_of_a_deactivated_user_is_rejected(api_client, admin_user):
    refresh = obtain(api_client).json()["refresh"]
    admin_user.is_active = False
    admin_user.save()

    response = api_client.post(TOKEN_URL + "/refresh", {"refresh": refresh}, format="json")

    assert response.status_code == 401
