"""Celery tasks of the webhooks (notify.webhooks_*)."""
