"""Fixtures of the email-alert tests (tests/notify/test_alerts*.py,
test_notification_settings*.py), imported explicitly by those modules."""

import pytest
from django.core import mail

from config.celery import app as celery_app
from system.kernel.redis_client import get_redis
from system.notify.alert_scan import alerts_scan
from system.notify.deprecation_alerts import COUNTER_PREFIX


@pytest.fixture
def locmem_email(settings):
    """Alerts go to django.core.mail.outbox; tasks run inline when their outbox row is sent."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox.clear()
    saved = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield mail.outbox
    celery_app.conf.task_always_eager = saved


@pytest.fixture(autouse=True)
def _fresh_deprecation_counters():
    """Deprecated-call counters live in Redis for two days: each test starts with none."""
    client = get_redis()
    keys = list(client.scan_iter(match=f"{COUNTER_PREFIX}*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture
def scan(django_capture_on_commit_callbacks):
    """scan() runs the alerts scan and the sends it enqueues; call it once first to place the
    cursor at the log's head."""

    def run() -> int:
        with django_capture_on_commit_callbacks(execute=True):
            return alerts_scan()

    return run
