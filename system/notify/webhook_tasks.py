"""Celery tasks of the webhooks (notify.webhooks_*): thin, by id, safe to run twice."""

from celery import shared_task

from system.notify.delivery import endpoint_deliver
from system.notify.dispatch import webhooks_dispatch as dispatch_run
from system.notify.prune import notify_prune


@shared_task(name="notify.webhooks_dispatch", ignore_result=True)
def webhooks_dispatch() -> int:
    """On beat every WEBHOOK_DISPATCH_SECONDS: new log entries → deliveries, then the sweep."""
    return dispatch_run().deliveries


@shared_task(name="notify.webhooks_deliver", ignore_result=True)
def webhooks_deliver(endpoint_id: str) -> int:
    """Deliver one endpoint's due deliveries in order (one run per endpoint at a time)."""
    return endpoint_deliver(endpoint_id)


@shared_task(name="notify.prune", ignore_result=True)
def prune() -> None:
    """Hourly on beat: the delivery log and alert records past their retention."""
    notify_prune()
