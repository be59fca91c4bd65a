"""System tasks: the SystemTask services and the three task implementations.

    system_task_create()  validates, stores the row (queued) and enqueues it on commit
    system_task_run()     what the Celery task calls: claims the row (queued → running),
                          runs the implementation, records succeeded/failed
    system_tasks_fail_stale()
                          a task still running after the hard time limit lost its worker
                          (killed, OOM, machine gone): it is marked failed, by the GET paths
                          and by a beat sweep, so nothing stays `running` forever

Claiming with a conditional UPDATE makes a redelivered message (late acks) a no-op.
"""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from agents.runtime import RoutingConfigError, load_routing_config, router_reload
from system.kernel.exceptions import DomainError, NotFound, ValidationFailed
from system.kernel.outbox import enqueue
from system.kernel.policy import PolicyError, policy_parse, policy_reload
from system.kernel.redis_client import get_redis
from system.kernel.reload import config_version_bump
from system.models import SystemTask
from system.ops.backup import BackupError, database_backup
from system.ops.tasks import run_system_task

logger = logging.getLogger(__name__)

TASK_TYPES: tuple[str, ...] = tuple(SystemTask.Type.values)
# A task as the API and the back office show it; each then adds the result and the error.
TASK_FIELDS = (
    "task_id",
    "task_type",
    "status",
    "parameters",
    "requested_by",
    "queued_at",
    "started_at",
    "finished_at",
)
CACHE_AREAS = ("all", "cache", "responses")
# After the hard time limit, give the worker this long to record the outcome itself.
STALE_GRACE = timedelta(seconds=60)
_SCAN_BATCH = 500
# Failures whose message says it all (a file and line, a missing tool): no traceback logged.
EXPECTED_FAILURES = (
    PolicyError,
    RoutingConfigError,
    BackupError,
    SoftTimeLimitExceeded,
    redis.RedisError,
    OSError,
)


class InvalidTaskType(DomainError):
    code = "invalid_task_type"
    http_status = 400
    message = "Unknown task type."


class SystemTaskNotFound(NotFound):
    code = "system_task_not_found"
    message = "No system task with this id."


# --- Parameters ------------------------------------------------------------------------------


def _no_unknown(parameters: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(parameters) - allowed)
    if unknown:
        raise ValidationFailed(
            "The task parameters are invalid.",
            details={
                "parameters": {
                    name: [f"Unknown parameter; allowed: {sorted(allowed)}."] for name in unknown
                }
            },
        )


def _clear_cache_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    _no_unknown(parameters, {"area"})
    area = parameters.get("area", "all")
    if area not in CACHE_AREAS:
        raise ValidationFailed(
            "The task parameters are invalid.",
            details={"parameters": {"area": [f"Must be one of {list(CACHE_AREAS)}."]}},
        )
    return {"area": area}


def _no_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    _no_unknown(parameters, set())
    return {}


_PARAMETERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    SystemTask.Type.CLEAR_CACHE: _clear_cache_parameters,
    SystemTask.Type.RELOAD_CONFIG: _no_parameters,
    SystemTask.Type.BACKUP_DATABASE: _no_parameters,
}


# --- Services --------------------------------------------------------------------------------


def system_task_create(
    *,
    task_type: str,
    parameters: dict[str, Any] | None = None,
    requested_by: AbstractBaseUser | None = None,
) -> SystemTask:
    """Store a queued task and hand it to the worker once the row is committed.

    Raises InvalidTaskType (listing the valid ones) or ValidationFailed (bad parameters).
    """
    if task_type not in TASK_TYPES:
        raise InvalidTaskType(
            f"Unknown task type {task_type!r}; valid types: {', '.join(TASK_TYPES)}.",
            details={"task_type": task_type, "valid_task_types": list(TASK_TYPES)},
        )
    if parameters is not None and not isinstance(parameters, dict):
        raise ValidationFailed(details={"parameters": ["Must be an object."]})
    clean = _PARAMETERS[task_type](parameters or {})
    with transaction.atomic():
        task = SystemTask.objects.create(
            task_type=task_type, parameters=clean, requested_by=requested_by
        )
        enqueue(run_system_task, str(task.task_id))
    return task


def system_tasks_fail_stale(*, now: datetime | None = None) -> int:
    """Mark failed every task running for longer than the hard time limit (plus a grace):
    Celery kills a task at that limit, so its worker can no longer report. Returns how many."""
    now = now or timezone.now()
    limit = settings.CELERY_TASK_TIME_LIMIT
    return SystemTask.objects.filter(
        status=SystemTask.Status.RUNNING,
        started_at__lt=now - timedelta(seconds=limit) - STALE_GRACE,
    ).update(
        status=SystemTask.Status.FAILED,
        finished_at=now,
        error=(
            f"No outcome within the hard time limit of {limit} s: the worker running the task "
            "was stopped or killed."
        ),
    )


def system_task_get(*, task_id: str) -> SystemTask:
    system_tasks_fail_stale()
    task = SystemTask.objects.select_related("requested_by").filter(pk=task_id).first()
    if task is None:
        raise SystemTaskNotFound(details={"task_id": str(task_id)})
    return task


def system_tasks_recent() -> QuerySet[SystemTask]:
    """Newest first; callers slice the page."""
    system_tasks_fail_stale()
    return SystemTask.objects.select_related("requested_by").order_by("-queued_at", "task_id")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SoftTimeLimitExceeded):
        return f"Stopped at the soft time limit of {settings.CELERY_TASK_SOFT_TIME_LIMIT} s."
    text = str(exc).strip()
    return (text or type(exc).__name__)[:2000]


def system_task_run(*, task_id: str) -> str:
    """Run a queued task once; returns its final status, or "skipped" when the row is not
    queued (already run, running elsewhere, or gone)."""
    claimed = SystemTask.objects.filter(pk=task_id, status=SystemTask.Status.QUEUED).update(
        status=SystemTask.Status.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return "skipped"
    task = SystemTask.objects.get(pk=task_id)
    try:
        result = IMPLEMENTATIONS[task.task_type](task.parameters)
    except EXPECTED_FAILURES as exc:
        logger.warning("system task %s (%s) failed: %s", task.task_id, task.task_type, exc)
        fields = {"status": SystemTask.Status.FAILED, "error": _describe(exc)}
    except Exception as exc:
        logger.exception("system task %s (%s) failed", task.task_id, task.task_type)
        fields = {"status": SystemTask.Status.FAILED, "error": _describe(exc)}
    else:
        fields = {"status": SystemTask.Status.SUCCEEDED, "result": result}
    # Conditional: a task the stale sweep already failed keeps that outcome.
    SystemTask.objects.filter(pk=task_id, status=SystemTask.Status.RUNNING).update(
        finished_at=timezone.now(), **fields
    )
    return fields["status"]


# --- Implementations -------------------------------------------------------------------------


def _delete_matching(client: redis.Redis, pattern: str) -> int:
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=pattern, count=_SCAN_BATCH):
        batch.append(key)
        if len(batch) >= _SCAN_BATCH:
            deleted += client.unlink(*batch)
            batch = []
    if batch:
        deleted += client.unlink(*batch)
    return deleted


def _clear_django_cache() -> int | None:
    """Delete the Django cache's keys only. Never cache.clear() on Redis: that is FLUSHDB,
    which would also drop the broker's queues and rate limits of a shared DB."""
    config = settings.CACHES["default"]
    if config["BACKEND"] != "django.core.cache.backends.redis.RedisCache":
        cache.clear()
        return None
    location = config["LOCATION"]
    servers = location.split(",") if isinstance(location, str) else list(location)
    client = redis.Redis.from_url(servers[0], socket_timeout=5, socket_connect_timeout=5)
    try:
        return _delete_matching(client, cache.make_key("*"))
    finally:
        client.close()


def clear_cache(parameters: dict[str, Any]) -> dict[str, Any]:
    """`area`: "cache" (the Django cache, the cached system status included), "responses"
    (the ETag versions `371os:ver:*`: every conditional GET then answers 200 once), or "all"."""
    area = parameters.get("area", "all")
    deleted: dict[str, int | None] = {}
    if area in {"all", "cache"}:
        deleted["cache"] = _clear_django_cache()
    if area in {"all", "responses"}:
        deleted["responses"] = _delete_matching(get_redis(), "371os:ver:*")
    return {"areas": sorted(deleted), "deleted_keys": deleted}


def reload_config(parameters: dict[str, Any]) -> dict[str, Any]:
    """Validate both files first, so that an invalid one changes nothing; then reload them
    here and bump the config version, which every web and worker process checks at most once
    a second on its next request or task."""
    rules_path = Path(settings.ROUTING_RULES_PATH)
    llm_path = Path(settings.LLM_ROUTING_PATH)
    policy_parse(rules_path.read_text(), rules_path)  # PolicyError names the file and line
    load_routing_config(llm_path)  # RoutingConfigError names the file and entry
    policy = policy_reload()
    router = router_reload()
    version = config_version_bump()
    return {
        "config_version": version,
        "routing_rules": {"path": str(rules_path), "actions": len(policy.actions)},
        "llm_routing": {"path": str(llm_path), "models": router.aliases()},
    }


def backup_database(parameters: dict[str, Any]) -> dict[str, Any]:
    return database_backup().as_result()


IMPLEMENTATIONS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    SystemTask.Type.CLEAR_CACHE: clear_cache,
    SystemTask.Type.RELOAD_CONFIG: reload_config,
    SystemTask.Type.BACKUP_DATABASE: backup_database,
}
