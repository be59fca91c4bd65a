"""The Celery application.

Every task must be idempotent: `task_acks_late` means a task whose worker dies mid-run is
delivered again, so a task re-fetches its rows by id, checks their state and only then calls a
service. Configuration comes from Django settings (`CELERY_*`).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
