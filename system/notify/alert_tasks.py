"""Celery tasks of the email alerts (notify.alerts_*)."""
