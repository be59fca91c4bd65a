"""Celery tasks of the kernel. Thin and idempotent: they call services."""

from celery import shared_task

from system.kernel.idempotency import idempotency_prune
from system.kernel.outbox import outbox_sweep


@shared_task(name="system.ping")
def ping() -> str:
    """Proves a worker consumes the queue and the result backend answers."""
    return "pong"


@shared_task(name="system.idempotency_prune")
def prune_idempotency_keys() -> int:
    return idempotency_prune()


@shared_task(name="system.outbox_sweep", ignore_result=True)
def sweep_outbox() -> int:
    """Send the queued work whose publish after commit failed (system.kernel.outbox)."""
    return outbox_sweep()
