"""The Celery application.

Every task must be idempotent: `task_acks_late` means a task whose worker dies mid-run is
delivered again, so a task re-fetches its rows by id, checks their state and only then calls a
service. Configuration comes from Django settings (`CELERY_*`).

Database connections live as long as in a web process: Celery's Django fixup closes every
connection before and after every task unless `CELERY_DB_REUSE_MAX` is set (a new PostgreSQL
connection per task added measurably to every agent reply), so the settings set it and the worker
instead does what Django does around a request, `close_old_connections()`, which honours
CONN_MAX_AGE and CONN_HEALTH_CHECKS and drops a connection left broken or mid-transaction.

The apps connect their own worker signals in their app configs (agents: preload the LLM
router before the pool forks; system.ops: the worker heartbeat and task-outcome counters), so
this module imports no app.
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
