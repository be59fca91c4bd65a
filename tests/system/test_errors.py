"""Every error is the envelope {"error": {code, message, details, timestamp, request_id}}."""

import pytest
from django.contrib.auth.models import Group
from django.db import connection

pytestmark = [pytest.mark.urls("tests.system.error_views"), pytest.mark.embedded]


def assert_envelope(response, status: int, code: str) -> dict:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details", "timestamp", "request_id"}
    assert error["code"] == code
    assert error["request_id"] == response["X-Request-ID"]
    return error


def test_invalid_body_returns_400_validation_error_with_per_field_details(api_client):
    response = api_client.post("/api/test/echo", {"name": "too long", "count": -1}, format="json")

    error = assert_envelope(response, 400, "validation_error")
    assert set(error["details"]) == {"name", "count"}


def test_malformed_json_returns_400(api_client):
    response = api_client.post("/api/test/echo", "{not json", content_type="application/json")

    assert_envelope(response, 400, "malformed_request")


def test_missing_credentials_return_401_with_www_authenticate(api_client):
    response = api_client.get("/api/test/private")

    assert_envelope(response, 401, "authentication_required")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_unknown_api_path_returns_404_envelope(api_client):
    response = api_client.get("/api/v1/no-such-thing")

    assert_envelope(response, 404, "not_found")


def test_unknown_non_api_path_keeps_html_404(client):
    response = client.get("/no-such-page")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_wrong_method_returns_405_with_allow_header(api_client):
    response = api_client.get("/api/test/echo")

    assert_envelope(response, 405, "method_not_allowed")
    assert "POST" in response["Allow"]


def test_non_json_body_returns_415(api_client):
    response = api_client.post("/api/test/echo", "name=a", content_type="text/plain")

    assert_envelope(response, 415, "unsupported_media_type")


def test_domain_error_keeps_its_code_status_and_details(api_client):
    response = api_client.post("/api/test/conflict", {}, format="json")

    error = assert_envelope(response, 409, "name_taken")
    assert error["details"] == {"name": "x"}


@pytest.mark.django_db
def test_unexpected_exception_returns_generic_500_and_rolls_back(api_client, monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)

    response = api_client.post("/api/test/boom", {}, format="json")

    error = assert_envelope(response, 500, "internal_error")
    assert "secret internal detail" not in response.content.decode()
    assert error["details"] == {}
    assert not Group.objects.filter(name="written-before-the-crash").exists()
