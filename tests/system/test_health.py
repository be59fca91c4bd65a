"""Liveness, readiness, the landing page and the kernel middleware."""

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections
from django.test import Client

from system.devserver.embedded_redis import free_port
from system.kernel.redis_client import get_redis
from system.ops import probes

pytestmark = pytest.mark.embedded


def test_healthz_answers_without_touching_the_database(client):
    # No django_db mark: any database access here would raise.
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_is_200_when_database_and_redis_answer(client):
    response = client.get("/readyz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is True


@pytest.mark.django_db
def test_readyz_is_503_naming_redis_when_redis_is_unreachable(client, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"

    response = client.get("/readyz")

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["redis"]["ok"] is False
    assert checks["redis"]["error"]
    assert checks["database"]["ok"] is True


@pytest.mark.parametrize("path", ["/v1/ws", "/api/v1/ws"])
def test_plain_http_on_the_websocket_path_answers_426_with_the_websocket_url(
    client, settings, path
):
    settings.WS_PORT = 9123

    response = client.get(path, HTTP_HOST="localhost:8000")

    assert response.status_code == 426
    assert response["Upgrade"] == "websocket"
    error = response.json()["error"]
    assert error["code"] == "upgrade_required"
    assert error["details"]["websocket_url"] == "ws://localhost:9123/v1/ws"


def test_a_safe_incoming_request_id_is_echoed(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="trace-42.a:b")

    assert response["X-Request-ID"] == "trace-42.a:b"


@pytest.mark.parametrize("unsafe", ["has spaces", "x" * 129, "<script>"])
def test_an_unsafe_incoming_request_id_is_replaced(client, unsafe):
    response = client.get("/healthz", HTTP_X_REQUEST_ID=unsafe)

    assert response["X-Request-ID"] != unsafe
    assert len(response["X-Request-ID"]) == 32


def test_access_log_has_one_line_per_request_without_the_query_string(client, caplog):
    with caplog.at_level(logging.INFO, logger="system.request"):
        response = client.get("/healthz?token=super-secret-token")

    lines = [r for r in caplog.records if r.name == "system.request"]
    assert len(lines) == 1
    line = lines[0].getMessage()
    assert line.startswith("GET /healthz 200 ")
    assert "super-secret-token" not in line
    assert lines[0].request_id == response["X-Request-ID"]


def test_landing_page_links_admin_docs_and_health(client):
    response = client.get("/")

    assert response.status_code == 200
    html = response.content.decode()
    for href in ('href="/admin/"', 'href="/api/docs/"', 'href="/healthz"', 'href="/readyz"'):
        assert href in html


@pytest.mark.django_db
def test_admin_is_titled_371os_back_office(client):
    response = client.get("/admin/login/")

    assert "371OS back office" in response.content.decode()


@pytest.mark.django_db
def test_readyz_reuses_one_redis_connection(client, settings):
    settings.READINESS_CACHE_SECONDS = 0
    client.get("/readyz")
    received = get_redis().info("stats")["total_connections_received"]

    for _ in range(5):
        assert client.get("/readyz").status_code == 200

    assert get_redis().info("stats")["total_connections_received"] == received


def _readyz_burst(size: int) -> list[int]:
    start = threading.Barrier(size)

    def ready(_: int) -> int:
        start.wait()
        try:
            return Client().get("/readyz").status_code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=size) as pool:
        return list(pool.map(ready, range(size)))


@pytest.mark.django_db
def test_concurrent_readyz_calls_share_one_probe(monkeypatch):
    probed = []
    ping = probes.database_ping_here
    monkeypatch.setattr(probes, "database_ping_here", lambda **kw: probed.append(1) or ping(**kw))

    statuses = _readyz_burst(20)

    assert statuses == [200] * 20
    assert len(probed) == 1
