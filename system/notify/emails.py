"""The alert emails: a plain-text and an HTML part rendered from templates/emails/<kind>.*,
sent from a worker with no database transaction open (read, send, then record `sent_at`)."""

import logging
from typing import Any

import redis
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import timezone

from system.kernel.redis_client import get_redis
from system.models import AlertSent

logger = logging.getLogger(__name__)

MANAGE_PATH = "/api/v1/auth/me/notifications"
SUBJECTS = {
    "deprecated_endpoint": "Deprecated endpoint used: {method} {path}",
    "agent_error": "Agent {agent_name} moved to error",
    "budget_reached": "Daily budget reached: {budget_label}",
    "webhook_disabled": "Webhook endpoint disabled: {url}",
}


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return "?"


def _calls_so_far(context: dict[str, Any]) -> int | None:
    """A deprecated endpoint's calls today by the alert's principal, counted now (the alert
    is made at the first call; the email goes a moment later), or None without Redis."""
    key = context.get("counter_key")
    if not key:
        return None
    try:
        value = get_redis().get(key)
    except redis.RedisError:
        return None
    return int(value) if value else None


def alert_email_build(alert: AlertSent) -> EmailMultiAlternatives:
    """The message for `alert` (not sent): subject, text body, HTML alternative."""
    context = {
        **alert.context,
        "calls": _calls_so_far(alert.context) or alert.context.get("calls", 1),
        "kind": alert.kind,
        "day": alert.day.isoformat(),
        "username": alert.recipient.get_username(),
        "manage_url": settings.PUBLIC_BASE_URL + MANAGE_PATH,
    }
    subject = "[371OS] " + SUBJECTS[alert.kind].format_map(_Blank(context))
    message = EmailMultiAlternatives(
        subject=subject[:200],
        body=render_to_string(f"emails/{alert.kind}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[alert.recipient.email],
    )
    message.attach_alternative(render_to_string(f"emails/{alert.kind}.html", context), "text/html")
    return message


def alert_email_send(*, alert_id: int) -> bool:
    """Send the email of one recorded alert unless it was sent already. Returns whether it
    went out. SMTP errors propagate (the task retries them); they are logged by class only,
    so no server URL or credential reaches the log.

    Not inside a transaction: each query commits on its own, and the SMTP conversation holds
    no lock. A worker dying between the send and the `sent_at` update sends it again on the
    task's redelivery (at least once)."""
    alert = (
        AlertSent.objects.select_related("recipient")
        .filter(pk=alert_id, sent_at__isnull=True)
        .first()
    )
    if alert is None:
        return False
    if not alert.recipient.email or not alert.recipient.is_active:
        logger.info("alert %s not sent: its recipient has no email address now", alert_id)
        AlertSent.objects.filter(pk=alert_id, sent_at__isnull=True).update(sent_at=timezone.now())
        return False
    message = alert_email_build(alert)
    try:
        message.send()
    except Exception as exc:
        logger.warning("alert %s email not sent (%s); retrying", alert_id, type(exc).__name__)
        raise
    AlertSent.objects.filter(pk=alert_id, sent_at__isnull=True).update(sent_at=timezone.now())
    return True
