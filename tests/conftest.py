import time

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from config.celery import app as celery_app
from system.auth import services
from system.kernel.ratelimit import WINDOW_SECONDS
from system.kernel.redis_client import get_redis
from system.ops.probes import readiness_cache_clear


@pytest.fixture(autouse=True)
def _unconsumed_celery_queue(request):
    """Tasks a non-e2e test enqueues go to a queue no worker reads: a live stack's worker
    (e2e tests share the Redis) must not run them behind the test's back."""
    if request.node.get_closest_marker("e2e"):
        yield
        return
    previous = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = "tests.unconsumed"
    yield
    celery_app.conf.task_default_queue = previous


@pytest.fixture(autouse=True)
def _offline_models(monkeypatch):
    """No provider key leaks in from the environment: the default routing file then serves
    every model with the builtin responder, and no test can reach a real LLM vendor."""
    for variable in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OLLAMA_BASE_URL"):
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2's deliberate slowness protects production passwords, not test fixtures.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_readiness():
    # /readyz answers from a 1 s cache: each test sees its own database and Redis.
    readiness_cache_clear()


@pytest.fixture(autouse=True)
def _fresh_rate_limit_windows():
    """Rate-limit counters live in Redis for a minute: each test starts with none."""
    client = get_redis()
    keys = list(client.scan_iter(match="371os:rl:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture(autouse=True)
def _fresh_spend_counters():
    """Budget counters live in Redis for the day: each test starts with today's spend read
    from its own (empty) ledger."""
    client = get_redis()
    keys = list(client.scan_iter(match="371os:spend:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture
def fresh_rate_window() -> None:
    """Start the test early in a one-minute rate-limit window, so that a burst of requests is
    never split by the window rolling over (which would reset the counters mid-test)."""
    into_window = time.time() % WINDOW_SECONDS
    if into_window > WINDOW_SECONDS - 10:
        time.sleep(WINDOW_SECONDS - into_window + 0.05)


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def eager_celery():
    """Tasks run inline when enqueued (unit tests only; the e2e tests use the real worker)."""
    saved = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = saved


@pytest.fixture
def make_user(db):
    """make_user("alice", roles=["messaging"]) → a user in those role groups."""
    created = 0

    def make(
        username: str | None = None,
        *,
        roles: tuple[str, ...] = (),
        password: str = "pw-123456!",
        **extra,
    ):
        nonlocal created
        created += 1
        user = get_user_model().objects.create_user(
            username=username or f"user{created}", password=password, **extra
        )
        user.groups.set(Group.objects.filter(name__in=roles))
        return user

    return make


@pytest.fixture
def make_api_key(make_user):
    """make_api_key(["admin"]) → the full key string of a new key with those roles."""

    def make(roles: list[str], *, owner=None, **kwargs) -> str:
        _, key = services.api_key_create(
            name="test key", owner=owner or make_user(), roles=roles, **kwargs
        )
        return key

    return make


@pytest.fixture
def client_as(make_api_key):
    """client_as("messaging") → a new APIClient authenticated with a key holding that role."""

    def as_role(*roles: str) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"ApiKey {make_api_key(list(roles))}")
        return client

    return as_role
