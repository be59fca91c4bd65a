"""Pruning what notifications keep: the delivery log (and its attempts) after
WEBHOOK_DELIVERY_RETENTION, and the once-a-day alert records after ALERT_RECORD_RETENTION (only
today's are needed to send each alert once; the rest is history for the admin)."""

from datetime import datetime

from django.conf import settings
from django.utils import timezone

from system.models import AlertSent, WebhookDelivery

BATCH = 5000


def notify_prune(*, now: datetime | None = None, batch_size: int = BATCH) -> tuple[int, int]:
    """Delete finished deliveries made before the retention window and old alert records, in
    batches that keep locks short. Returns (deliveries, alerts) deleted. Pending deliveries
    stay whatever their age: they are still owed."""
    now = now or timezone.now()
    # Deliveries are made in id order as time goes: the old ones are the ids below the first
    # one inside the window, found by walking the primary key (no index on created_at).
    first_kept = (
        WebhookDelivery.objects.filter(created_at__gte=now - settings.WEBHOOK_DELIVERY_RETENTION)
        .order_by("id")
        .values_list("id", flat=True)
        .first()
    )
    old = WebhookDelivery.objects.exclude(status=WebhookDelivery.Status.PENDING)
    if first_kept is not None:
        old = old.filter(id__lt=first_kept)
    deliveries = 0
    while ids := list(old.order_by("id").values_list("id", flat=True)[:batch_size]):
        WebhookDelivery.objects.filter(id__in=ids).delete()
        deliveries += len(ids)
    cutoff = (now - settings.ALERT_RECORD_RETENTION).date()
    alerts = AlertSent.objects.filter(day__lt=cutoff).delete()[0]
    return deliveries, alerts
