"""Delivery health for the system dashboard (system.ops reads it): per endpoint, what waits,
what failed lately, when it last got through and why it last did not."""

from datetime import timedelta
from typing import Any

from django.db.models import Count, Max, OuterRef, Q, Subquery
from django.utils import timezone

from system.models import WebhookDelivery, WebhookEndpoint

LIMIT = 50


def webhook_health(*, limit: int = LIMIT) -> list[dict[str, Any]]:
    """Up to `limit` endpoints (newest first; disabled and failing ones too), in two queries:
    the endpoints with their counts, then the last error of each."""
    since = timezone.now() - timedelta(hours=24)
    pending = Q(deliveries__status=WebhookDelivery.Status.PENDING)
    failed = Q(deliveries__status=WebhookDelivery.Status.FAILED, deliveries__finished_at__gte=since)
    succeeded = Q(deliveries__status=WebhookDelivery.Status.SUCCEEDED)
    rows = list(
        WebhookEndpoint.objects.order_by("-created_at")
        .annotate(
            pending=Count("deliveries", filter=pending),
            failed_24h=Count("deliveries", filter=failed),
            last_success_at=Max("deliveries__finished_at", filter=succeeded),
        )
        .values(
            "endpoint_id",
            "url",
            "owner__username",
            "enabled",
            "disabled_reason",
            "failing_since",
            "pending",
            "failed_24h",
            "last_success_at",
        )[:limit]
    )
    last_errors = _last_errors([row["endpoint_id"] for row in rows])
    return [
        {
            "endpoint_id": row["endpoint_id"],
            "url": row["url"],
            "owner": row["owner__username"],
            "enabled": row["enabled"],
            "disabled_reason": row["disabled_reason"],
            "failing_since": row["failing_since"],
            "pending": row["pending"],
            "failed_24h": row["failed_24h"],
            "last_success_at": row["last_success_at"],
            "last_error": last_errors.get(row["endpoint_id"]) or "",
        }
        for row in rows
    ]


def _last_errors(endpoint_ids: list) -> dict[Any, str]:
    """The most recent delivery error of each endpoint (one query)."""
    if not endpoint_ids:
        return {}
    latest = (
        WebhookDelivery.objects.filter(endpoint_id=OuterRef("pk"))
        .exclude(last_error="")
        .order_by("-id")
        .values("last_error")[:1]
    )
    return dict(
        WebhookEndpoint.objects.filter(pk__in=endpoint_ids)
        .annotate(last_error=Subquery(latest))
        .values_list("pk", "last_error")
    )
