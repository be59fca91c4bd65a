"""Conditional GETs: ETag from per-resource versions, 304 on match, new tag after a write."""

import pytest

from system.devserver.embedded_redis import free_port

pytestmark = [
    pytest.mark.urls("tests.system.kernel_views"),
    pytest.mark.django_db,
    pytest.mark.embedded,
]

URL = "/api/test/groups"


def test_cached_read_carries_etag_cache_control_and_vary(client_as):
    response = client_as("messaging").get(URL)

    assert response.status_code == 200
    assert response["ETag"].startswith('"') and response["ETag"].endswith('"')
    assert response["Cache-Control"] == "private, max-age=30"
    assert response["Vary"] == "Authorization, X-API-KEY"


def test_matching_if_none_match_answers_304_without_a_body(client_as):
    client = client_as("messaging")
    etag = client.get(URL)["ETag"]

    response = client.get(URL, HTTP_IF_NONE_MATCH=etag)

    assert response.status_code == 304
    assert response.content == b""
    assert response["ETag"] == etag


def test_a_write_changes_the_tag_at_once(client_as, django_capture_on_commit_callbacks):
    client = client_as("admin")
    etag = client.get(URL)["ETag"]

    with django_capture_on_commit_callbacks(execute=True):
        client.post(URL, {"name": "new-group"}, format="json")
    response = client.get(URL, HTTP_IF_NONE_MATCH=etag)

    assert response.status_code == 200
    assert response["ETag"] != etag
    assert "new-group" in response.json()["groups"]


def test_tags_differ_between_principals(client_as):
    first = client_as("messaging").get(URL)["ETag"]
    second = client_as("messaging").get(URL)["ETag"]

    assert first != second


def test_redis_down_serves_the_read_without_an_etag(client_as, settings):
    client = client_as("messaging")
    etag = client.get(URL)["ETag"]
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"

    response = client.get(URL, HTTP_IF_NONE_MATCH=etag)

    assert response.status_code == 200
    assert "ETag" not in response


def test_wildcard_if_none_match_is_not_honoured(client_as):
    response = client_as("messaging").get(URL, HTTP_IF_NONE_MATCH="*")

    assert response.status_code == 200
