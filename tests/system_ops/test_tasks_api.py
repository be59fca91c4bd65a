"""POST/GET /api/v1/system/tasks: validation, the queued → running → succeeded/failed life
cycle (Celery eager here; tests/e2e/test_system_tasks.py runs them on the real worker), the
clear_cache and reload_config implementations, and tasks whose worker died."""

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.utils import timezone

from agents.runtime import get_router
from system.kernel.policy import get_policy
from system.kernel.redis_client import get_redis
from system.models import SystemTask
from system.ops.system_tasks import system_task_create, system_task_run

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

URL = "/api/v1/system/tasks"
RULES = django_settings.ROUTING_RULES_PATH.read_text()
LLM_ROUTING = django_settings.LLM_ROUTING_PATH.read_text()


@pytest.fixture
def admin(client_as):
    return client_as("admin")


def test_post_answers_202_queued_and_enqueues_after_commit(
    admin, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin.post(URL, {"task_type": "clear_cache"}, format="json")

    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"task_id", "task_type", "status", "queued_at"}
    assert body["status"] == "queued"
    assert body["task_type"] == "clear_cache"
    task = SystemTask.objects.get(pk=body["task_id"])
    assert task.status == SystemTask.Status.QUEUED
    assert task.parameters == {"area": "all"}
    assert len(callbacks) == 1


def test_unknown_task_type_is_400_listing_the_valid_ones(admin):
    response = admin.post(URL, {"task_type": "format_disk"}, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_task_type"
    assert error["details"]["valid_task_types"] == [
        "clear_cache",
        "reload_config",
        "backup_database",
    ]
    assert not SystemTask.objects.exists()


@pytest.mark.parametrize(
    ("task_type", "parameters", "field"),
    [
        ("clear_cache", {"area": "everything"}, "area"),
        ("clear_cache", {"areas": "all"}, "areas"),
        ("backup_database", {"path": "/etc"}, "path"),
    ],
)
def test_bad_parameters_are_400_with_details(admin, task_type, parameters, field):
    response = admin.post(URL, {"task_type": task_type, "parameters": parameters}, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["details"]["parameters"]


def test_parameters_must_be_an_object(admin):
    response = admin.post(URL, {"task_type": "clear_cache", "parameters": [1]}, format="json")

    assert response.status_code == 400
    assert "parameters" in response.json()["error"]["details"]


def test_a_task_runs_to_succeeded_with_its_result_and_times(
    admin, eager_celery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        task_id = admin.post(URL, {"task_type": "clear_cache"}, format="json").json()["task_id"]

    body = admin.get(f"{URL}/{task_id}").json()

    assert body["status"] == "succeeded"
    assert body["result"]["areas"] == ["cache", "responses"]
    assert body["error"] == ""
    assert body["started_at"] <= body["finished_at"]


def test_clear_cache_deletes_django_cache_and_etag_versions_but_not_other_keys(
    make_user, fresh_rate_window
):
    cache.set("some-page", "cached", timeout=300)
    get_redis().set("371os:ver:agents", "123")
    get_redis().set("371os:rl:test-bucket:0", "5")
    task = system_task_create(task_type="clear_cache", requested_by=make_user())

    system_task_run(task_id=task.task_id)

    task.refresh_from_db()
    assert task.status == SystemTask.Status.SUCCEEDED
    assert task.result["deleted_keys"]["cache"] >= 1
    assert task.result["deleted_keys"]["responses"] >= 1
    assert cache.get("some-page") is None
    assert get_redis().get("371os:ver:agents") is None
    assert get_redis().get("371os:rl:test-bucket:0") == b"5"


def test_clear_cache_of_one_area_leaves_the_other(make_user):
    cache.set("some-page", "cached", timeout=300)
    get_redis().set("371os:ver:agents", "123")
    task = system_task_create(task_type="clear_cache", parameters={"area": "responses"})

    system_task_run(task_id=task.task_id)

    assert cache.get("some-page") == "cached"
    assert get_redis().get("371os:ver:agents") is None


def test_reload_config_applies_an_edited_rules_file(tmp_path, settings, client_as):
    settings.ROUTING_RULES_PATH = tmp_path / "rules.yaml"
    settings.ROUTING_RULES_PATH.write_text(RULES)
    get_policy()
    settings.ROUTING_RULES_PATH.write_text(
        RULES.replace("system_monitor: 200", "system_monitor: 7")
    )
    task = system_task_create(task_type="reload_config")

    system_task_run(task_id=task.task_id)

    task.refresh_from_db()
    assert task.status == SystemTask.Status.SUCCEEDED
    assert task.result["routing_rules"]["path"] == str(settings.ROUTING_RULES_PATH)
    assert get_policy().role_limits["system_monitor"] == 7


def test_reload_config_with_an_invalid_file_fails_and_keeps_the_running_policy(tmp_path, settings):
    settings.ROUTING_RULES_PATH = tmp_path / "rules.yaml"
    settings.ROUTING_RULES_PATH.write_text(RULES)
    get_policy()
    settings.ROUTING_RULES_PATH.write_text(RULES.replace("[admin]", "[admin, wizard]"))
    task = system_task_create(task_type="reload_config")

    system_task_run(task_id=task.task_id)

    task.refresh_from_db()
    assert task.status == SystemTask.Status.FAILED
    assert "rules.yaml:" in task.error
    assert "unknown role 'wizard'" in task.error
    assert get_policy().actions["auth.api_keys.list"].roles == {"admin"}


def test_reload_config_with_an_invalid_llm_routing_file_fails_and_keeps_the_router(
    tmp_path, settings
):
    settings.LLM_ROUTING_PATH = tmp_path / "llm_routing.yaml"
    settings.LLM_ROUTING_PATH.write_text(LLM_ROUTING)
    aliases = get_router().aliases()
    settings.LLM_ROUTING_PATH.write_text("providers: {}\nmodels: {}\n")
    task = system_task_create(task_type="reload_config")

    system_task_run(task_id=task.task_id)

    task.refresh_from_db()
    assert task.status == SystemTask.Status.FAILED
    assert "llm_routing.yaml" in task.error
    assert get_router().aliases() == aliases


def test_a_redelivered_message_does_not_run_the_task_again():
    task = system_task_create(task_type="clear_cache")

    first = system_task_run(task_id=task.task_id)
    second = system_task_run(task_id=task.task_id)

    assert (first, second) == ("succeeded", "skipped")


def test_a_task_running_past_the_hard_time_limit_reads_as_failed(admin, settings):
    task = system_task_create(task_type="backup_database")
    SystemTask.objects.filter(pk=task.pk).update(
        status=SystemTask.Status.RUNNING,
        started_at=timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 61),
    )

    body = admin.get(f"{URL}/{task.task_id}").json()

    assert body["status"] == "failed"
    assert "hard time limit" in body["error"]
    assert body["finished_at"] is not None


def test_a_task_running_within_its_time_limit_stays_running(admin):
    task = system_task_create(task_type="backup_database")
    SystemTask.objects.filter(pk=task.pk).update(
        status=SystemTask.Status.RUNNING, started_at=timezone.now() - timedelta(seconds=30)
    )

    assert admin.get(f"{URL}/{task.task_id}").json()["status"] == "running"


def test_list_is_newest_first_and_paginated(admin, django_assert_max_num_queries):
    ids = [str(system_task_create(task_type="clear_cache").task_id) for _ in range(3)]

    with django_assert_max_num_queries(6):
        body = admin.get(URL, {"limit": 2}).json()
    second_page = admin.get(URL, {"limit": 2, "page": 2}).json()

    assert [t["task_id"] for t in body["tasks"]] == ids[::-1][:2]
    assert body["pagination"] == {"page": 1, "limit": 2, "total": 3}
    assert [t["task_id"] for t in second_page["tasks"]] == ids[:1]


def test_unknown_task_id_is_404_in_the_envelope(admin):
    response = admin.get(f"{URL}/00000000-0000-0000-0000-000000000000")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "system_task_not_found"


def test_an_idempotency_key_replays_the_first_answer(admin):
    first = admin.post(URL, {"task_type": "clear_cache"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    again = admin.post(URL, {"task_type": "clear_cache"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")

    assert again.json() == first.json()
    assert SystemTask.objects.count() == 1
