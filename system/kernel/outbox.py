"""The transactional outbox: queued work survives a broker outage.

`enqueue(task, *args)` writes an `OutboxMessage` row in the caller's transaction, so the work
is recorded exactly when the change that needs it commits (and never for a rollback). After
commit a robust hook publishes it to Celery with a short retry policy (a dead broker costs a
request at most about twice OUTBOX_PUBLISH_TIMEOUT, never a hang, never a 500), the message
carrying the row's id in an `outbox_id` header. The row stays until a worker has run the task
(`task_finished`, on Celery's task_postrun, deletes it, whether the task returned or raised):
a broker that restarts empty (Redis without persistence) loses its queue, not the work, and a
worker killed mid-task leaves the row for the sweep instead of waiting for the broker's
visibility timeout (an hour). A published row is due again after OUTBOX_ACK_SECONDS (doubled
per attempt); when the broker refuses, the hook logs one line and
the row is due after the retry backoff (and for a second the process's hooks leave new rows
to the sweep rather than wait on that broker again). `outbox_sweep` (on beat, every
OUTBOX_SWEEP_SECONDS) claims rows that are due and sends them, pushing each claimed row back
(OUTBOX_RETRY_SECONDS doubled per attempt, at most OUTBOX_RETRY_MAX_SECONDS; a claim lasts
that long, so keep OUTBOX_RETRY_SECONDS above the time one batch takes to send). Rows are
never given up: a broker outage delays work and loses none.

A task may therefore be published twice (a backlog or a run longer than OUTBOX_ACK_SECONDS; a
process died between publishing and recording it; the broker acknowledged a publish that the
hook still reported as failed). That is harmless because every task enqueued here claims its
own rows before it works (the agent reply checks for a stored reply and a database constraint
refuses a second; workflow steps, meetings, deployments and system tasks move their row out of
its queued state, or take its lease, with a conditional UPDATE), as late acks already require.
"""

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from celery import Task, current_app
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from kombu import Producer
from kombu.pools import producers

from system.models import OutboxMessage

logger = logging.getLogger(__name__)

# After a failed publish to a broker, this process's hooks skip publishing to it this long.
PAUSE_SECONDS = 1.0
_paused_until: dict[str, float] = {}


def enqueue(task: Task, *args: Any) -> OutboxMessage:
    """Record `task(*args)` in the current transaction and send it once that commits.

    Call inside the transaction that makes the change the task works on; the arguments must
    be JSON (ids, not objects). Outside a transaction the row is written and sent at once."""
    row = OutboxMessage.objects.create(
        task_name=task.name, args=list(args), due_at=timezone.now() + _retry_delay(0)
    )
    transaction.on_commit(lambda: _send_after_commit(row), robust=True)
    return row


def outbox_sweep(*, limit: int | None = None) -> int:
    """Send the rows that are due (their first publish failed, or its process died). Returns
    how many the broker took.

    Rows are claimed before they are sent: locked with `SELECT ... FOR UPDATE SKIP LOCKED` on
    PostgreSQL (SQLite's IMMEDIATE transactions serialize writers instead), then, in the same
    transaction, their `attempts` raised and `due_at` pushed to the next backoff (one UPDATE per
    attempt count), so two sweeps never send one row and a row whose send fails waits its
    backoff. No transaction is open while the broker is called."""
    now = timezone.now()
    with transaction.atomic():
        claimed = list(
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(due_at__lte=now)
            .order_by("due_at", "pk")[: limit or settings.OUTBOX_SWEEP_BATCH]
        )
        by_attempts: dict[int, list[int]] = {}
        for row in claimed:
            by_attempts.setdefault(row.attempts, []).append(row.pk)
        for attempts, pks in by_attempts.items():
            OutboxMessage.objects.filter(pk__in=pks).update(
                attempts=F("attempts") + 1, due_at=now + _retry_delay(attempts + 1)
            )
    sent = 0
    for row in claimed:
        if not _send(row):
            # The broker is down: the rest keep their claim and wait for their backoff.
            break
        sent += 1
    return sent


def _send_after_commit(row: OutboxMessage) -> None:
    # Just after a failed publish, leave the row to the sweep: a request that enqueues
    # several tasks (or a burst of requests) against a broker that does not answer pays for
    # one timeout, not one each.
    app = current_app
    if not app.conf.task_always_eager and time.monotonic() < _paused_until.get(
        app.conf.broker_url, 0.0
    ):
        return
    _send(row)


def task_finished(sender: Task | None = None, task: Task | None = None, **kwargs: Any) -> None:
    """Celery's task_postrun: the task of an outbox row has run (returned or raised: a task
    that fails is not sent again); the row is done."""
    request = getattr(task, "request", None)
    if request is None:
        return
    outbox_id = getattr(request, "outbox_id", None) or (request.headers or {}).get("outbox_id")
    if outbox_id is not None:
        OutboxMessage.objects.filter(pk=outbox_id).delete()


def _send(row: OutboxMessage) -> bool:
    """Publish one row; it stays, due again after OUTBOX_ACK_SECONDS, until a worker has run
    its task. Never raises: a row the broker refused stays due."""
    try:
        _publish(row)
    except Exception as exc:  # noqa: BLE001 - any broker or transport error: the row stays
        # One line, the error's class only: a broker URL in a message may carry a password.
        logger.warning(
            "outbox: %s (row %s) not sent (%s); the outbox sweep retries it",
            row.task_name,
            row.pk,
            type(exc).__name__,
        )
        return False
    ack = settings.OUTBOX_ACK_SECONDS * 2 ** min(row.attempts, 6)
    OutboxMessage.objects.filter(pk=row.pk).update(due_at=timezone.now() + timedelta(seconds=ack))
    return True


def _publish(row: OutboxMessage) -> None:
    app = current_app
    task_name, args, headers = row.task_name, row.args, {"outbox_id": row.pk}
    if app.conf.task_always_eager:  # unit tests: run inline, as delay() would
        app.tasks[task_name].apply_async(args, headers=headers)
        return
    try:
        with _producer() as producer:
            # By name: a web process need not have imported every task module. Nobody reads
            # these tasks' results: with none stored, no SUBSCRIBE to the result backend
            # precedes the publish (one round trip fewer, one dependency fewer).
            app.send_task(
                task_name,
                args,
                producer=producer,
                headers=headers,
                ignore_result=True,
                retry=True,
                retry_policy=_retry_policy(),
            )
    except Exception:
        _paused_until[app.conf.broker_url] = time.monotonic() + PAUSE_SECONDS
        raise


@contextmanager
def _producer() -> Iterator[Producer]:
    """A pooled producer on a connection with short timeouts: kombu's defaults wait for a
    broker that does not answer for far longer than a request may."""
    timeout = settings.OUTBOX_PUBLISH_TIMEOUT
    connection = current_app.connection_for_write(
        connect_timeout=timeout,
        transport_options={
            **_retry_policy(),
            "socket_connect_timeout": timeout,
            "socket_timeout": timeout,
        },
    )
    try:
        with producers[connection].acquire(block=True, timeout=timeout) as producer:
            yield producer
    finally:
        connection.release()


def _retry_policy() -> dict[str, float]:
    return {"max_retries": 1, "interval_start": 0, "interval_step": 0.1, "interval_max": 0.1}


def _retry_delay(attempts: int) -> timedelta:
    seconds = settings.OUTBOX_RETRY_SECONDS * 2 ** min(attempts, 20)
    return timedelta(seconds=min(seconds, settings.OUTBOX_RETRY_MAX_SECONDS))
