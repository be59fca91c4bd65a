"""System operations on the real processes: status with the worker's live heartbeat, and each
system task queued over HTTP, run by the real Celery worker, read back over HTTP.

One dedicated stack for the module, with its own embedded Redis (so no other stack's worker
can take its tasks) and its own copy of the rules file (edited by the reload_config test).
"""

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
from django.conf import settings

from agents.services import agent_create
from system.devserver.embedded_redis import free_port
from tests.e2e.conftest import LiveStack, run_stack
from tests.system_ops.restore import restored_rows

pytestmark = [pytest.mark.e2e, pytest.mark.embedded]

RULES = Path(settings.ROUTING_RULES_PATH).read_text()
TASK_TIMEOUT = 90
STATUS, TASKS = "/api/v1/system/status", "/api/v1/system/tasks"
GRANTED = "system.tasks.read: [admin, agent_manager, system_monitor]"
RELOAD_WITHIN = 5


@dataclass
class OpsStack:
    live: LiveStack
    rules: Path
    redis: redis.Redis
    backup_dir: Path

    def url(self, path: str) -> str:
        return f"{self.live.api_url}{path}"


@pytest.fixture(scope="module")
def ops_stack(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[OpsStack]:
    tmp = tmp_path_factory.mktemp("ops-stack")
    rules = tmp / "routing_rules.yaml"
    rules.write_text(RULES)
    port = free_port()
    with (
        django_db_blocker.unblock(),
        run_stack(
            tmp,
            REDIS_URL=None,
            EMBEDDED_REDIS_PORT=str(port),
            ROUTING_RULES_PATH=str(rules),
            BACKUP_DIR=str(tmp / "backups"),
        ) as live,
    ):
        yield OpsStack(live, rules, redis.Redis(port=port), tmp / "backups")


def run_task(stack: OpsStack, key: str, task_type: str, **parameters) -> dict:
    """POST the task, then poll it until the worker has finished it."""
    headers = {"X-API-KEY": key}
    posted = httpx.post(
        stack.url("/api/v1/system/tasks"),
        json={"task_type": task_type, "parameters": parameters},
        headers=headers,
        timeout=30,
    )
    assert posted.status_code == 202, posted.text
    assert posted.json()["status"] == "queued"
    url = stack.url(f"/api/v1/system/tasks/{posted.json()['task_id']}")
    deadline = time.monotonic() + TASK_TIMEOUT
    while time.monotonic() < deadline:
        body = httpx.get(url, headers=headers, timeout=30).json()
        if body["status"] in {"succeeded", "failed"}:
            return body
        time.sleep(0.25)
    pytest.fail(f"{task_type} did not finish within {TASK_TIMEOUT}s:\n{stack.live.log_tail()}")


def poll(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.25)
    return condition()


def test_status_is_healthy_with_the_workers_live_heartbeat(
    ops_stack, transactional_db, make_api_key
):
    headers = {"X-API-KEY": make_api_key(["system_monitor"])}

    def status() -> dict:
        return httpx.get(ops_stack.url(STATUS), headers=headers, timeout=30).json()

    # The worker beats once it is ready; a status computed before that is cached for 10 s.
    assert poll(lambda: status()["status"] == "healthy", 40), (status(), ops_stack.live.log_tail())
    body = status()
    assert body["services"]["agent_orchestrator"] == "operational"
    assert body["details"]["agent_orchestrator"]["workers"] == 1


def test_clear_cache_on_the_worker_drops_cached_responses_and_etag_versions(
    ops_stack, transactional_db, make_api_key
):
    admin = make_api_key(["admin"])
    httpx.get(ops_stack.url("/api/v1/agents"), headers={"X-API-KEY": admin}, timeout=30)
    httpx.get(ops_stack.url(STATUS), headers={"X-API-KEY": admin}, timeout=30)
    assert ops_stack.redis.exists("371os:ver:agents")
    assert list(ops_stack.redis.scan_iter(match="371os:1:system-status:*"))

    task = run_task(ops_stack, admin, "clear_cache")

    assert task["status"] == "succeeded", task
    assert task["result"]["deleted_keys"]["responses"] >= 1
    assert not ops_stack.redis.exists("371os:ver:agents")
    assert list(ops_stack.redis.scan_iter(match="371os:1:system-status:*")) == []
    assert ops_stack.redis.ping()  # the broker's own keys were not flushed with the cache


def test_reload_config_changes_a_limit_and_a_role_rule_and_refuses_an_invalid_file(
    ops_stack, transactional_db, make_api_key
):
    admin = make_api_key(["admin"])
    manager = {"X-API-KEY": make_api_key(["agent_manager"])}

    def manager_get(path: str) -> httpx.Response:
        # Generous timeout: on a loaded 2-core machine the first request after a reload can
        # be slow; the 5-second bound is on the change becoming visible, checked by poll().
        return httpx.get(ops_stack.url(path), headers=manager, timeout=30)

    assert manager_get(STATUS).headers["X-RateLimit-Limit"] == "500"
    assert manager_get(TASKS).status_code == 403

    edited = RULES.replace("    agent_manager: 500", "    agent_manager: 321").replace(
        "system.tasks.read: [admin]", GRANTED
    )
    assert edited.count("321") == 1 and GRANTED in edited
    ops_stack.rules.write_text(edited)
    reloaded = run_task(ops_stack, admin, "reload_config")

    assert reloaded["status"] == "succeeded", reloaded
    assert reloaded["result"]["routing_rules"]["path"] == str(ops_stack.rules)
    assert poll(lambda: manager_get(STATUS).headers["X-RateLimit-Limit"] == "321", RELOAD_WITHIN)
    assert poll(lambda: manager_get(TASKS).status_code == 200, RELOAD_WITHIN)

    ops_stack.rules.write_text(edited.replace(GRANTED, "system.tasks.read: [admin, wizard]"))
    refused = run_task(ops_stack, admin, "reload_config")

    assert refused["status"] == "failed"
    assert "unknown role 'wizard'" in refused["error"]
    assert str(ops_stack.rules) in refused["error"]
    time.sleep(1.5)  # past every process's once-a-second check
    assert manager_get(STATUS).headers["X-RateLimit-Limit"] == "321"
    assert manager_get(TASKS).status_code == 200
    ops_stack.rules.write_text(RULES)


def test_backup_on_the_worker_writes_a_file_that_restores_with_the_rows(
    ops_stack, transactional_db, make_api_key
):
    agent_create(name="ceo_mimi", type="ceo_mimi")

    task = run_task(ops_stack, make_api_key(["admin"]), "backup_database")

    assert task["status"] == "succeeded", task
    path = Path(task["result"]["path"])
    assert path.parent == ops_stack.backup_dir
    assert task["result"]["bytes"] == path.stat().st_size
    assert task["result"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert restored_rows(path, "SELECT name FROM agents_agent") == [("ceo_mimi",)]
