"""Fixtures for system operations: a clean slate of the Redis keys status reads, worker
heartbeats, Redis or the database made unreachable, eager Celery, JWTs without a user row."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from django.db import connections
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from config.celery import app as celery_app
from system.devserver.embedded_redis import free_port
from system.kernel.redis_client import get_redis
from system.ops.heartbeat import HEARTBEAT_INDEX_KEY, worker_heartbeat_write
from system.ops.status import status_cache_clear

_PATTERNS = ("371os:reqstats:*", "371os:heartbeat:*", "371os:ver:system-status:*")


@pytest.fixture(autouse=True)
def clean_status_state() -> None:
    """Each test computes its own status from its own heartbeats and counters."""
    client = get_redis()
    for pattern in _PATTERNS:
        keys = list(client.scan_iter(match=pattern, count=1000))
        if keys:
            client.delete(*keys)
    client.delete(HEARTBEAT_INDEX_KEY)
    status_cache_clear()


@pytest.fixture
def fresh_worker() -> str:
    """A worker whose heartbeat was written just now."""
    worker_heartbeat_write("worker@test")
    return "worker@test"


@pytest.fixture
def redis_down(settings) -> None:
    """Cache, broker and the kernel's Redis all pointed at a port nobody listens on."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    settings.REDIS_URL = url
    settings.CELERY_BROKER_URL = url
    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": url,
        }
    }


@pytest.fixture
def database_down(django_db_blocker) -> Callable[[], object]:
    """`with database_down(): ...` makes every new connection to the default database fail
    (a closed port for PostgreSQL, an unopenable path for SQLite), in this thread and the
    probe threads alike, and restores it on exit. Use with transactional_db."""

    @contextmanager
    def down() -> Iterator[None]:
        connection = connections["default"]
        saved = dict(connection.settings_dict)
        with django_db_blocker.unblock():
            connection.close()
            if connection.vendor == "sqlite":
                connection.settings_dict["NAME"] = "/nonexistent-371os-dir/db.sqlite3"
            else:
                connection.settings_dict.update({"HOST": "127.0.0.1", "PORT": str(free_port())})
            try:
                yield
            finally:
                connection.close()
                connection.settings_dict.clear()
                connection.settings_dict.update(saved)

    return down


@pytest.fixture
def jwt_client() -> Callable[..., APIClient]:
    """jwt_client(user_id, roles) → a client with a signed access token for those claims
    (no user row needed: for requests made while the database is down)."""

    def make(user_id: int, roles: list[str]) -> APIClient:
        token = AccessToken()
        token["user_id"] = str(user_id)
        token["roles"] = roles
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client

    return make


@pytest.fixture
def eager_celery() -> Iterator[None]:
    """Tasks run inline when enqueued (unit tests only; the e2e tests use the real worker)."""
    saved = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = saved
