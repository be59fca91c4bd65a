import pytest

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


def test_body_over_the_limit_is_refused_with_413(client_as, settings):
    settings.MAX_REQUEST_BODY_BYTES = 1024

    response = client_as("admin").post(
        "/api/v1/auth/api-keys", {"name": "x" * 2000, "roles": ["admin"]}, format="json"
    )

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_list_limit_is_capped_at_100(client_as):
    response = client_as("admin").get("/api/v1/auth/api-keys?limit=1000&page=1")

    assert response.status_code == 200
    assert response.json()["pagination"] == {"page": 1, "limit": 100, "total": 1}


def test_non_numeric_limit_is_a_validation_error(client_as):
    response = client_as("admin").get("/api/v1/auth/api-keys?limit=lots")

    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"limit": ["Must be an integer."]}


def test_a_body_nested_ten_thousand_deep_is_a_400_malformed_request(client_as):
    body = "[" * 10_000 + "]" * 10_000

    response = client_as("admin").post(
        "/api/v1/auth/api-keys", body, content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"


def test_a_body_nested_33_deep_is_a_400_malformed_request(client_as):
    body = '{"name": "deep", "roles": ["admin"], "x": ' + "[" * 32 + "]" * 32 + "}"

    response = client_as("admin").post(
        "/api/v1/auth/api-keys", body, content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"


def test_brackets_inside_strings_do_not_count_as_nesting(client_as):
    body = '{"name": "' + "[{" * 40 + '\\"]", "roles": ["admin"]}'

    response = client_as("admin").post(
        "/api/v1/auth/api-keys", body, content_type="application/json"
    )

    assert response.status_code == 201
