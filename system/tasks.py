"""Celery tasks of the platform kernel. Thin and idempotent: they call services."""

from celery import shared_task
from django.conf import settings

from system.idempotency import idempotency_prune
from system.services import event_log_prune


@shared_task(name="system.ping")
def ping() -> str:
    """Proves a worker consumes the queue and the result backend answers."""
    return "pong"


@shared_task(name="system.event_log_prune")
def prune_event_log() -> int:
    return event_log_prune(older_than=settings.EVENT_LOG_RETENTION)


@shared_task(name="system.idempotency_prune")
def prune_idempotency_keys() -> int:
    return idempotency_prune()


@shared_task(name="system.run_system_task")
def run_system_task(task_id: str) -> str:
    """Runs one SystemTask row; a redelivered message finds it claimed and does nothing."""
    from system.system_tasks import system_task_run

    return system_task_run(task_id=task_id)


@shared_task(name="system.system_tasks_sweep")
def sweep_system_tasks() -> int:
    """Beat, every minute: tasks whose worker died are failed after the hard time limit."""
    from system.system_tasks import system_tasks_fail_stale

    return system_tasks_fail_stale()
