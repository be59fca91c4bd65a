"""Pruning the delivery log and the alert records past their retention."""

from datetime import timedelta

import pytest
from django.utils import timezone

from system.models import AlertSent, WebhookAttempt, WebhookDelivery
from system.notify.prune import notify_prune
from tests.notify.webhook_factories import endpoint_make

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


def delivery(endpoint, n: int, status: str, age: timedelta) -> WebhookDelivery:
    made = WebhookDelivery.objects.create(
        endpoint=endpoint,
        event_id=n,
        event_type="agent_status_update",
        message_id=f"msg_{n}",
        payload={},
        status=status,
        created_at=timezone.now() - age,
    )
    WebhookAttempt.objects.create(delivery=made, number=1)
    return made


def test_finished_deliveries_past_retention_go_with_their_attempts_pending_ones_stay(
    make_user, settings
):
    settings.WEBHOOK_DELIVERY_RETENTION = timedelta(days=7)
    endpoint = endpoint_make(owner=make_user(), url="https://93.184.216.34/hook")
    old_done = delivery(endpoint, 1, "succeeded", timedelta(days=9))
    old_failed = delivery(endpoint, 2, "failed", timedelta(days=8))
    old_owed = delivery(endpoint, 3, "pending", timedelta(days=8))
    recent = delivery(endpoint, 4, "succeeded", timedelta(days=1))

    deliveries, _ = notify_prune(batch_size=1)

    assert deliveries == 2
    kept = set(WebhookDelivery.objects.values_list("id", flat=True))
    assert kept == {old_owed.id, recent.id}
    assert not WebhookAttempt.objects.filter(delivery_id__in=[old_done.id, old_failed.id]).exists()


def test_alert_records_past_retention_go(make_user, settings):
    settings.ALERT_RECORD_RETENTION = timedelta(days=30)
    user = make_user()
    today = timezone.now().date()
    for days in (0, 29, 31):
        AlertSent.objects.create(
            recipient=user, kind="agent_error", subject_key="a", day=today - timedelta(days=days)
        )

    _, alerts = notify_prune()

    assert alerts == 1
    assert sorted((today - row.day).days for row in AlertSent.objects.all()) == [0, 29]
