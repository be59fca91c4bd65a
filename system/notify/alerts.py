"""Email alerts: recorded once per recipient, kind, subject and day (UTC), sent after commit.

`alert_send` is what every trigger calls (the deprecation hook, the alerts scan of the event
log, the webhook dispatcher when it disables an endpoint). It writes the `AlertSent` row, the
`alert_sent` event and the outbox row of the send task in the caller's transaction; the email
itself goes out from a worker (system.notify.emails), never inside a transaction.
"""

import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from system.eventlog.events import EventScope
from system.eventlog.services import event_emit
from system.kernel import outbox
from system.models import AlertSent, NotificationSettings
from system.notify import alert_tasks

logger = logging.getLogger(__name__)

DEPRECATED_ENDPOINT = "deprecated_endpoint"
AGENT_ERROR = "agent_error"
BUDGET_REACHED = "budget_reached"
WEBHOOK_DISABLED = "webhook_disabled"
KINDS: tuple[str, ...] = (DEPRECATED_ENDPOINT, AGENT_ERROR, BUDGET_REACHED, WEBHOOK_DISABLED)
ALERT_SENT_EVENT = "alert_sent"


def alert_kinds_disabled(user_id: int) -> list[str]:
    """The alert kinds a user turned off (none unless they saved settings)."""
    row = NotificationSettings.objects.filter(user_id=user_id).values("disabled_alerts").first()
    return list(row["disabled_alerts"]) if row else []


def alert_send(*, recipient_id: int, kind: str, subject_key: str, context: dict[str, Any]) -> bool:
    """Record an alert for `recipient_id` and send it by email after commit. Returns whether
    one was recorded: False when this (recipient, kind, subject, day) already has one, the
    recipient turned `kind` off, or has no email address (or is gone or inactive).

    Call inside the transaction of the change it reports (it opens a savepoint of its own, so
    a concurrent caller's duplicate never breaks the caller's transaction). `context` is JSON
    the templates read; keep secrets and email addresses out of it: it is stored."""
    if kind not in KINDS:
        raise ValueError(f"unknown alert kind {kind!r}")
    recipient = (
        get_user_model()
        .objects.filter(pk=recipient_id, is_active=True)
        .values_list("email", flat=True)
        .first()
    )
    if not recipient:
        logger.info("alert %s for user %s skipped: no email address", kind, recipient_id)
        return False
    if kind in alert_kinds_disabled(recipient_id):
        return False
    day = timezone.now().date()  # USE_TZ: now() is UTC, so this is the UTC day
    with transaction.atomic():
        # The unique constraint decides between concurrent callers: get_or_create retries the
        # read after the losing INSERT's IntegrityError, inside its own savepoint.
        alert, created = AlertSent.objects.get_or_create(
            recipient_id=recipient_id,
            kind=kind,
            subject_key=subject_key[:200],
            day=day,
            defaults={"context": context},
        )
        if not created:
            return False
        event_emit(
            event_type=ALERT_SENT_EVENT,
            data={
                "kind": kind,
                "subject": alert.subject_key,
                "alert_id": alert.pk,
                "day": day.isoformat(),
            },
            scope=EventScope(owner_id=recipient_id),
        )
        outbox.enqueue(alert_tasks.alerts_send, alert.pk)
    return True


def notification_settings_get(*, user_id: int) -> dict[str, Any]:
    """A user's email address (None without one) and which alert kinds are on."""
    email = get_user_model().objects.filter(pk=user_id).values_list("email", flat=True).first()
    disabled = set(alert_kinds_disabled(user_id))
    return {"email": email or None, "alerts": {kind: kind not in disabled for kind in KINDS}}


def notification_settings_update(*, user_id: int, alerts: dict[str, bool]) -> dict[str, Any]:
    """Turn alert kinds on (True) or off (False) for a user; kinds not named keep their
    setting. `alerts` holds known kinds only (the caller validated them)."""
    with transaction.atomic():
        row, _ = NotificationSettings.objects.select_for_update().get_or_create(user_id=user_id)
        disabled = set(row.disabled_alerts) - {k for k, on in alerts.items() if on}
        disabled |= {k for k, on in alerts.items() if not on}
        row.disabled_alerts = [kind for kind in KINDS if kind in disabled]
        row.save(update_fields=["disabled_alerts", "updated_at"])
    return notification_settings_get(user_id=user_id)
