"""Celery tasks of system operations. Thin and idempotent: they call services."""

from celery import shared_task


@shared_task(name="system.run_system_task")
def run_system_task(task_id: str) -> str:
    """Runs one SystemTask row; a redelivered message finds it claimed and does nothing."""
    from system.ops.system_tasks import system_task_run  # the module enqueues this task

    return system_task_run(task_id=task_id)


@shared_task(name="system.system_tasks_sweep")
def sweep_system_tasks() -> int:
    """Beat, every minute: tasks whose worker died are failed after the hard time limit."""
    from system.ops.system_tasks import system_tasks_fail_stale

    return system_tasks_fail_stale()
