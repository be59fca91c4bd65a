"""GET /api/v1/system/status: real probes, live metrics, a 10-second cache with ETags, and an
answer even while Redis or the database is down."""

import os
import time

import pytest
import time_machine

from agents.services import agent_create, agent_start
from config.celery import app as celery_app
from sessions_app import timeouts
from sessions_app.services import session_create
from system.ops.heartbeat import heartbeat_fresh_seconds, worker_heartbeat_write
from system.ops.status import STATUS_BUCKET_SECONDS, status_cache_clear

pytestmark = [pytest.mark.embedded]

URL = "/api/v1/system/status"
SERVICES = {"api_gateway", "agent_orchestrator", "message_broker", "database", "cache"}


@pytest.mark.django_db
def test_all_parts_answering_is_healthy_with_each_probes_latency(client_as, fresh_worker):
    response = client_as("system_monitor").get(URL)

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["services"] == dict.fromkeys(SERVICES, "operational")
    assert set(body["details"]) == SERVICES
    assert all(body["details"][name]["latency_ms"] >= 0 for name in SERVICES)
    assert body["details"]["agent_orchestrator"]["workers"] == 1
    assert set(body["metrics"]) == {
        "active_agents",
        "active_sessions",
        "requests_per_minute",
        "error_rate",
        "system_load",
    }
    assert body["timestamp"]


@pytest.mark.django_db
def test_metrics_count_running_agents_and_the_load_per_cpu(client_as, fresh_worker):
    agent_start(agent=agent_create(name="ceo_mimi", type="ceo_mimi"))
    agent_create(name="cfo_cash", type="cfo_cash")

    metrics = client_as("system_monitor").get(URL).json()["metrics"]

    assert metrics["active_agents"] == 1
    assert metrics["active_sessions"] == 0
    load = os.getloadavg()[0] / os.cpu_count()
    assert metrics["system_load"] == pytest.approx(load, abs=0.5)


@pytest.mark.django_db
def test_active_sessions_include_those_past_expiry_the_sweep_has_not_reached(
    client_as, make_user, fresh_worker
):
    mimi = agent_start(agent=agent_create(name="ceo_mimi", type="ceo_mimi"))
    session_create(
        agent=mimi, user_id="user-1", owner=make_user("owner"), config=timeouts.defaults()
    )
    client = client_as("system_monitor")

    with time_machine.travel(time.time() + 2 * 3600):
        metrics = client.get(URL).json()["metrics"]

    assert metrics["active_sessions"] == 1


@pytest.fixture
def memory_broker(settings) -> None:
    """A broker that is not Redis: kombu's in-process transport. The Celery app's
    configuration is a live view of the Django settings, so it follows (and is restored)."""
    settings.CELERY_BROKER_URL = "memory://"
    assert celery_app.conf.broker_url == "memory://"


@pytest.mark.django_db
def test_a_broker_that_is_not_redis_is_probed_through_the_celery_apps_connection(
    client_as, fresh_worker, memory_broker
):
    body = client_as("system_monitor").get(URL).json()

    assert body["services"]["message_broker"] == "operational"
    assert "error" not in body["details"]["message_broker"]


@pytest.mark.django_db
def test_status_is_cached_for_its_ten_second_bucket_with_an_etag(client_as, fresh_worker):
    client = client_as("system_monitor")
    with time_machine.travel(time.time() // STATUS_BUCKET_SECONDS * STATUS_BUCKET_SECONDS + 1):
        first = client.get(URL)
        agent_start(agent=agent_create(name="ceo_mimi", type="ceo_mimi"))
        second = client.get(URL)
        revalidated = client.get(URL, HTTP_IF_NONE_MATCH=first["ETag"])

    assert first["Cache-Control"] == "private, max-age=10"
    assert second.json() == first.json()
    assert revalidated.status_code == 304
    assert second["ETag"] == first["ETag"]


@pytest.mark.django_db
def test_the_next_bucket_computes_a_new_status_with_a_new_etag(client_as, fresh_worker):
    client = client_as("system_monitor")
    start = time.time() // STATUS_BUCKET_SECONDS * STATUS_BUCKET_SECONDS + 1
    with time_machine.travel(start):
        first = client.get(URL)
    agent_start(agent=agent_create(name="ceo_mimi", type="ceo_mimi"))
    with time_machine.travel(start + STATUS_BUCKET_SECONDS):
        worker_heartbeat_write("worker@test")
        later = client.get(URL, HTTP_IF_NONE_MATCH=first["ETag"])

    assert later.status_code == 200
    assert later["ETag"] != first["ETag"]
    assert later.json()["metrics"]["active_agents"] == 1


@pytest.mark.django_db
def test_a_stale_worker_heartbeat_makes_the_orchestrator_degraded(client_as):
    worker_heartbeat_write("worker@old", at=time.time() - heartbeat_fresh_seconds() - 5)

    body = client_as("system_monitor").get(URL).json()

    assert body["services"]["agent_orchestrator"] == "degraded"
    assert body["status"] == "degraded"
    assert body["details"]["agent_orchestrator"]["newest_heartbeat_age_seconds"] > 30


@pytest.mark.django_db
def test_one_fresh_worker_among_stale_ones_is_operational(client_as, fresh_worker):
    worker_heartbeat_write("worker@old", at=time.time() - heartbeat_fresh_seconds() - 5)

    body = client_as("system_monitor").get(URL).json()

    assert body["services"]["agent_orchestrator"] == "operational"


@pytest.mark.django_db
def test_no_worker_heartbeat_makes_the_orchestrator_unavailable(client_as):
    body = client_as("system_monitor").get(URL).json()

    assert body["services"]["agent_orchestrator"] == "unavailable"
    assert body["details"]["agent_orchestrator"]["error"] == "no worker heartbeat"
    assert body["status"] == "degraded"


@pytest.mark.django_db
def test_redis_down_reports_cache_and_broker_unavailable_and_still_answers(
    client_as, fresh_worker, redis_down
):
    response = client_as("system_monitor").get(URL)

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["services"]["cache"] == "unavailable"
    assert body["services"]["message_broker"] == "unavailable"
    assert body["services"]["agent_orchestrator"] == "unavailable"
    assert body["services"]["database"] == "operational"
    assert body["details"]["cache"]["error"] == "ConnectionError"
    assert body["metrics"]["requests_per_minute"] is None
    assert "ETag" not in response


@pytest.mark.django_db(transaction=True)
def test_database_down_answers_200_unhealthy_to_a_jwt(jwt_client, database_down, fresh_worker):
    client = jwt_client(4242, ["system_monitor"])

    with database_down():
        response = client.get(URL)

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["services"]["database"] == "unavailable"
    assert body["services"]["cache"] == "operational"
    assert body["metrics"]["active_agents"] is None
    assert body["metrics"]["active_sessions"] is None


@pytest.mark.django_db(transaction=True)
def test_database_down_a_recently_verified_api_key_still_reads_the_status(
    client_as, database_down, fresh_worker
):
    client = client_as("system_monitor")
    assert client.get(URL).json()["services"]["database"] == "operational"
    status_cache_clear()

    with database_down():
        response = client.get(URL)

    assert response.status_code == 200
    assert response.json()["services"]["database"] == "unavailable"


@pytest.mark.django_db(transaction=True)
def test_database_down_an_unverified_api_key_gets_503_authentication_unavailable(
    client_as, database_down
):
    client = client_as("system_monitor")

    with database_down():
        response = client.get(URL)

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "authentication_unavailable"


@pytest.mark.django_db(transaction=True)
def test_database_down_only_readiness_answers_503(client, database_down):
    with database_down():
        response = client.get("/readyz")

    assert response.status_code == 503
