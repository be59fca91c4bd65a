"""The notify room's Celery tasks, registered from their modules (`notify.*`)."""

from system.notify import alert_tasks, webhook_tasks  # noqa: F401  (registers the tasks)
