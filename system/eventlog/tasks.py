"""Celery tasks of the event log: beat prunes it."""

from celery import shared_task
from django.conf import settings

from system.eventlog.services import event_log_prune


@shared_task(name="system.event_log_prune")
def prune_event_log() -> int:
    return event_log_prune(older_than=settings.EVENT_LOG_RETENTION)
