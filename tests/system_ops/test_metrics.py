"""GET /metrics: Prometheus text format, off by default, behind a bearer token."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agents.services import agent_create, agent_start
from system.kernel.redis_client import get_redis
from system.kernel.tasks import ping
from system.ops.metrics import CELERY_OUTCOMES_KEY, task_outcome_counting_start

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

TOKEN = "metrics-token-for-tests"


@pytest.fixture
def metrics_on(settings):
    settings.METRICS_ENABLED = True
    settings.METRICS_TOKEN = TOKEN


def scrape(client) -> dict[str, list]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    families = text_string_to_metric_families(response.content.decode())
    return {family.name: family.samples for family in families}


def value(samples: list, name: str, **labels: str) -> float:
    return next(s.value for s in samples if s.name == name and s.labels == labels)


def test_metrics_are_off_unless_enabled(client):
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", f"Token {TOKEN}"])
def test_without_the_bearer_token_metrics_answer_401(client, metrics_on, header):
    extra = {"HTTP_AUTHORIZATION": header} if header else {}

    response = client.get("/metrics", **extra)

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_requests_are_counted_by_route_method_and_status_with_latency(client, metrics_on):
    before = scrape(client)["os371_http_requests"]
    client.get("/healthz")

    families = scrape(client)
    after = families["os371_http_requests"]
    labels = {"route": "healthz", "method": "GET", "status": "200"}
    earlier = next((s.value for s in before if s.name.endswith("_total") and s.labels == labels), 0)
    assert value(after, "os371_http_requests_total", **labels) == earlier + 1
    durations = families["os371_http_request_duration_seconds"]
    assert value(
        durations, "os371_http_request_duration_seconds_count", route="healthz", method="GET"
    )


def test_celery_task_outcomes_are_counted_across_processes_in_redis(client, metrics_on):
    get_redis().delete(CELERY_OUTCOMES_KEY)
    task_outcome_counting_start()

    ping.apply()
    ping.apply()

    samples = scrape(client)["os371_celery_tasks"]
    assert value(samples, "os371_celery_tasks_total", task="system.ping", outcome="success") == 2


def test_active_sessions_agents_and_events_published_come_from_the_database(client, metrics_on):
    agent_start(agent=agent_create(name="ceo_mimi", type="ceo_mimi"))

    families = scrape(client)

    assert value(families["os371_active_agents"], "os371_active_agents") == 1
    assert value(families["os371_active_sessions"], "os371_active_sessions") == 0
    assert value(families["os371_events_published"], "os371_events_published_total") >= 1
