"""Delivery health for the dashboard: per endpoint, in at most three queries."""

from datetime import timedelta

import pytest
from django.utils import timezone

from system.models import WebhookDelivery
from system.notify.health import webhook_health
from tests.notify.webhook_factories import endpoint_make

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

URL = "https://93.184.216.34/hooks"


def delivery(endpoint, n: int, status: str, **fields) -> WebhookDelivery:
    return WebhookDelivery.objects.create(
        endpoint=endpoint,
        event_id=n,
        event_type="agent_status_update",
        message_id=f"msg_{n}",
        payload={},
        status=status,
        **fields,
    )


def test_health_counts_pending_and_recent_failures_and_shows_the_last_success_and_error(
    make_user, django_assert_max_num_queries
):
    now = timezone.now()
    owner = make_user("ops-owner")
    endpoint = endpoint_make(owner=owner, url=URL)
    quiet = endpoint_make(owner=make_user(), url=URL + "/quiet", enabled=False)
    delivery(endpoint, 1, "succeeded", finished_at=now - timedelta(hours=2))
    delivery(endpoint, 2, "failed", finished_at=now - timedelta(hours=30), last_error="HTTP 410")
    delivery(endpoint, 3, "failed", finished_at=now - timedelta(hours=1), last_error="HTTP 400")
    delivery(endpoint, 4, "pending", last_error="timeout")
    delivery(endpoint, 5, "pending")
    for n in range(6, 60):
        endpoint_make(owner=owner, url=f"{URL}/{n}")

    with django_assert_max_num_queries(3):
        rows = webhook_health()

    assert len(rows) == 50
    by_id = {row["endpoint_id"]: row for row in webhook_health(limit=100)}
    row = by_id[endpoint.endpoint_id]
    assert row["owner"] == "ops-owner"
    assert row["url"] == URL
    assert (row["pending"], row["failed_24h"]) == (2, 1)
    assert row["last_success_at"] == now - timedelta(hours=2)
    assert row["last_error"] == "timeout"
    assert by_id[quiet.endpoint_id]["enabled"] is False
    assert (by_id[quiet.endpoint_id]["pending"], by_id[quiet.endpoint_id]["last_error"]) == (0, "")
