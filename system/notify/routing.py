"""Celery routing (CELERY_TASK_ROUTES names this function): webhook deliveries go to their own
queue, WEBHOOK_QUEUE, consumed by the Procfile's `webhooks` worker (a thread pool: a delivery
mostly waits on the network), so a slow or dead receiver never holds a slot of the worker that
runs agent replies and workflows. Read at publish time, so settings overrides apply."""

from typing import Any

from django.conf import settings

DELIVER_TASK = "notify.webhooks_deliver"


def route_task(name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **kw: Any):
    if name == DELIVER_TASK:
        return {"queue": settings.WEBHOOK_QUEUE}
    return None
