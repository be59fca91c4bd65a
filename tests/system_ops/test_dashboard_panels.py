"""The system dashboard's panels: WebSocket connections per ws process, LLM circuits across
processes, recent API errors, human timestamps, the backup confirmation, the webhook slot,
and a page that still answers with Redis down."""

import json
import re
import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from agents.runtime.breaker import CircuitBreakers
from agents.runtime.circuits import CIRCUITS_KEY, circuit_published, circuits_read
from system.kernel.redis_client import get_redis
from system.models import SystemTask, WebhookDelivery
from system.ops.counters import API_ERRORS_KEPT, API_ERRORS_KEY
from system.ops.dashboard import WS_PROCESSES_KEY
from system.ops.system_tasks import system_task_create, system_task_run
from tests.notify.webhook_factories import endpoint_make

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

DASHBOARD = "/admin/system/systemtask/dashboard/"


@pytest.fixture(autouse=True)
def _clean_dashboard_keys():
    get_redis().delete(WS_PROCESSES_KEY, CIRCUITS_KEY, API_ERRORS_KEY)


@pytest.fixture
def superuser_client(client, make_user):
    client.force_login(make_user("chief", is_staff=True, is_superuser=True))
    return client


def _module(page: str, module_id: str) -> str:
    start = page.index(f'id="{module_id}"')
    return page[start : page.index("</table>", start)]


def test_ws_panel_lists_each_process_and_totals_the_fresh_ones(superuser_client):
    now = time.time()
    get_redis().hset(
        WS_PROCESSES_KEY,
        mapping={
            "ws-a:101": json.dumps({"connections": 7, "updated_at": now - 2}),
            "ws-b:202": json.dumps({"connections": 5, "updated_at": now - 8}),
            "ws-c:303": json.dumps({"connections": 4, "updated_at": now - 60}),  # stale
            "ws-d:404": json.dumps({"connections": 9, "updated_at": now - 3600}),  # gone
        },
    )

    page = superuser_client.get(DASHBOARD).content.decode()

    panel = _module(page, "dashboard-ws")
    assert "ws-a:101" in panel and "ws-b:202" in panel
    assert re.search(r"ws-c:303</th>\s*<td>4 \(stale\)</td>", panel)
    assert "ws-d:404" not in panel
    assert '<td id="dashboard-ws-total">12</td>' in panel
    assert get_redis().hexists(WS_PROCESSES_KEY, "ws-d:404") == 0


def test_circuit_transitions_are_published_and_shown_per_provider(superuser_client):
    clock = [1000.0]
    breakers = CircuitBreakers(
        failures=2, cooldown_seconds=30, clock=lambda: clock[0], on_change=circuit_published
    )
    breakers.record_failure("openai")
    breakers.record_failure("openai")  # → open
    breakers.record_success("builtin")  # nothing changed: nothing published

    page = superuser_client.get(DASHBOARD).content.decode()

    panel = _module(page, "dashboard-circuits")
    row = re.search(r"openai.*?</tr>", panel, re.S).group(0)
    assert 'class="dashboard-state-open">open</td>' in row
    assert "<td>2</td>" in row
    assert '<time class="dashboard-time"' in row
    builtin = re.search(r"builtin.*?</tr>", panel, re.S).group(0)
    assert 'dashboard-state-closed">closed</td>' in builtin
    assert [e["provider"] for e in circuits_read()] == ["openai"]


def test_circuit_states_follow_open_half_open_and_closed():
    clock = [1000.0]
    breakers = CircuitBreakers(
        failures=1, cooldown_seconds=30, clock=lambda: clock[0], on_change=circuit_published
    )

    def state() -> tuple[str, int]:
        (entry,) = circuits_read()
        return entry["state"], entry["consecutive_failures"]

    breakers.record_failure("anthropic")
    assert state() == ("open", 1)
    clock[0] += 31
    assert breakers.allow("anthropic")
    assert state() == ("half_open", 1)
    breakers.record_success("anthropic")
    assert state() == ("closed", 0)


def test_a_failing_api_request_is_listed_without_its_query_string(
    superuser_client, client_as, fresh_rate_window
):
    api = client_as("agent_manager")
    failed = api.post(
        "/api/v1/agents?token=secret-in-query", {"name": ""}, format="json"
    )  # 400 validation_error
    api.get("/api/v1/agents")  # 200: not recorded
    api.get("/api/v1/agents/no-such-agent")  # 404: noise, not recorded

    page = superuser_client.get(DASHBOARD).content.decode()

    assert failed.status_code == 400
    (entry,) = [json.loads(e) for e in get_redis().lrange(API_ERRORS_KEY, 0, -1)]
    assert entry["path"] == "/api/v1/agents"
    assert (entry["method"], entry["status"], entry["code"]) == ("POST", 400, "validation_error")
    assert entry["request_id"] == failed["X-Request-ID"]
    assert entry["principal"].startswith("key:")
    panel = _module(page, "dashboard-api-errors")
    assert "validation_error" in panel and failed["X-Request-ID"] in panel
    assert "secret-in-query" not in page


@pytest.mark.urls("tests.system_ops.urls")
def test_a_5xx_is_recorded_and_the_list_is_capped(client):
    for _ in range(API_ERRORS_KEPT + 3):
        client.get("/test/fail?x=1")

    errors = get_redis().lrange(API_ERRORS_KEY, 0, -1)

    assert len(errors) == API_ERRORS_KEPT
    assert json.loads(errors[0])["path"] == "/test/fail"
    assert json.loads(errors[0])["status"] == 500


def test_times_are_human_with_the_exact_time_in_the_title(superuser_client):
    task = system_task_create(task_type="clear_cache")
    system_task_run(task_id=task.task_id)
    SystemTask.objects.filter(pk=task.pk).update(
        queued_at=timezone.now() - timedelta(minutes=3, seconds=5)
    )
    task.refresh_from_db()

    page = superuser_client.get(DASHBOARD).content.decode()

    exact = task.queued_at.isoformat(timespec="seconds").replace("+00:00", "Z")
    assert f'title="{exact}">3\xa0minutes ago</time>' in page


def test_backup_asks_for_confirmation_and_queues_only_when_confirmed(
    superuser_client, django_capture_on_commit_callbacks, settings
):
    run = reverse("admin:system_dashboard_run")

    asked = superuser_client.post(run, {"task_type": "backup_database"})

    assert asked.status_code == 200
    assert "Run a database backup now? It writes to BACKUP_DIR" in asked.content.decode()
    assert str(settings.BACKUP_DIR) in asked.content.decode()
    assert 'name="confirmed" value="1"' in asked.content.decode()
    assert not SystemTask.objects.exists()

    with django_capture_on_commit_callbacks() as callbacks:
        confirmed = superuser_client.post(run, {"task_type": "backup_database", "confirmed": "1"})

    assert confirmed.status_code == 302 and confirmed["Location"] == DASHBOARD
    assert SystemTask.objects.get().task_type == "backup_database"
    assert len(callbacks) == 1


def test_clear_cache_still_runs_on_one_click(superuser_client):
    response = superuser_client.post(
        reverse("admin:system_dashboard_run"), {"task_type": "clear_cache"}
    )

    assert response.status_code == 302
    assert SystemTask.objects.get().task_type == "clear_cache"


def test_the_webhook_section_shows_each_endpoints_delivery_health(superuser_client, make_user):
    endpoint = endpoint_make(owner=make_user("ops-hook-owner"), url="https://93.184.216.34/ops")
    WebhookDelivery.objects.create(
        endpoint=endpoint,
        event_id=1,
        event_type="agent_status_update",
        message_id="msg_1",
        payload={},
        status=WebhookDelivery.Status.FAILED,
        finished_at=timezone.now(),
        last_error="HTTP 502",
    )

    page = superuser_client.get(DASHBOARD).content.decode()

    section = page[page.index('id="dashboard-webhooks"') :]
    assert "https://93.184.216.34/ops" in section and "ops-hook-owner" in section
    assert "HTTP 502" in section


def test_with_redis_down_the_dashboard_still_answers_and_says_unknown(superuser_client, redis_down):
    response = superuser_client.get(DASHBOARD)

    assert response.status_code == 200
    page = response.content.decode()
    assert "unknown (Redis unreachable)" in _module(page, "dashboard-ws")
    assert "unknown (Redis unreachable)" in _module(page, "dashboard-api-errors")
    assert "Circuit states unknown" in page
    assert "Requests per minute: unknown" in page
