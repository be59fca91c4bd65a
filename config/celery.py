"""The Celery application.

Every task must be idempotent: `task_acks_late` means a task whose worker dies mid-run is
delivered again, so a task re-fetches its rows by id, checks their state and only then calls a
service. Configuration comes from Django settings (`CELERY_*`).

A worker also writes a heartbeat to Redis every WORKER_HEARTBEAT_SECONDS (the status API's
`agent_orchestrator`) and counts task outcomes for /metrics (system.status, system.metrics).
"""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
def _count_task_outcomes(**kwargs) -> None:
    from system.metrics import task_outcome_counting_start

    task_outcome_counting_start()


@signals.worker_ready.connect
def _start_heartbeat(sender, **kwargs) -> None:
    from system.status import worker_heartbeat_start

    worker_heartbeat_start(sender.hostname)


@signals.worker_shutdown.connect
def _stop_heartbeat(**kwargs) -> None:
    from system.status import worker_heartbeat_stop

    worker_heartbeat_stop()
