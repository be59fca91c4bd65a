"""The Celery application.

Every task must be idempotent: `task_acks_late` means a task whose worker dies mid-run is
delivered again, so a task re-fetches its rows by id, checks their state and only then calls a
service. Configuration comes from Django settings (`CELERY_*`).

Database connections live as long as in a web process: Celery's Django fixup closes every
connection before and after every task unless `CELERY_DB_REUSE_MAX` is set (a new PostgreSQL
connection per task cost ~12 ms of every agent reply), so the settings set it and the worker
instead does what Django does around a request, `close_old_connections()`, which honours
CONN_MAX_AGE and CONN_HEALTH_CHECKS and drops a connection left broken or mid-transaction.

A worker loads the LLM router (and the SDKs of the providers configured) before it forks its
pool, so no pool process pays for that on its first agent reply.

A worker also writes a heartbeat to Redis every WORKER_HEARTBEAT_SECONDS (the status API's
`agent_orchestrator`) and counts task outcomes for /metrics (system.status, system.metrics).
"""

import logging
import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

logger = logging.getLogger(__name__)

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
@signals.task_postrun.connect
def _close_old_db_connections(sender=None, **kwargs) -> None:
    # Eager tasks (unit tests) run inside the caller's transaction: leave its connection be.
    if sender is None or getattr(sender.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


@signals.worker_init.connect
def _count_task_outcomes(**kwargs) -> None:
    from system.metrics import task_outcome_counting_start

    task_outcome_counting_start()


@signals.worker_init.connect
def _preload_llm_router(**kwargs) -> None:
    # In the main process, before the pool forks: every pool process inherits the loaded
    # routing and the imported SDKs, instead of paying seconds on its first agent reply.
    from agents.runtime import get_router

    try:
        get_router().preload()
    except Exception as exc:  # noqa: BLE001 - a task reports the routing error when it runs
        logger.warning("LLM router not preloaded (%s: %s)", type(exc).__name__, exc)


@signals.worker_ready.connect
def _start_heartbeat(sender, **kwargs) -> None:
    from system.status import worker_heartbeat_start

    worker_heartbeat_start(sender.hostname)


@signals.worker_shutdown.connect
def _stop_heartbeat(**kwargs) -> None:
    from system.status import worker_heartbeat_stop

    worker_heartbeat_stop()
