"""Celery tasks of the email alerts (notify.alerts_*): thin, idempotent, by id."""

import smtplib

from celery import shared_task

from system.notify import alert_scan, emails

# An SMTP server that refuses or is unreachable: retried with backoff, a bounded number of times.
SEND_RETRIES = 5
SEND_BACKOFF_MAX_SECONDS = 600


@shared_task(
    name="notify.alerts_send",
    ignore_result=True,
    autoretry_for=(smtplib.SMTPException, OSError),
    retry_backoff=30,
    retry_backoff_max=SEND_BACKOFF_MAX_SECONDS,
    retry_jitter=True,
    max_retries=SEND_RETRIES,
)
def alerts_send(alert_id: int) -> None:
    """Email one recorded alert (a no-op once it was sent)."""
    emails.alert_email_send(alert_id=alert_id)


@shared_task(name="notify.alerts_scan", ignore_result=True)
def alerts_scan() -> int:
    """Beat: alert on the event log's new agent errors and budget refusals."""
    return alert_scan.alerts_scan()
