"""Settings of system.notify (webhooks and email alerts), imported by config.settings.

Email goes through Django's email framework, configured by `EMAIL_URL` (django-environ's
syntax: `smtp+tls://user:pass@host:587`, `consolemail://`, `locmemmail://`); the default is the
console backend, so under `make run` alerts show in the stack's log.
"""

from datetime import timedelta

import environ

env = environ.Env()

_email = env.email_url("EMAIL_URL", default="consolemail://")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email.get("EMAIL_HOST", "localhost")
EMAIL_PORT = _email.get("EMAIL_PORT", 25)
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = _email.get("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = _email.get("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="371OS <noreply@localhost>")
# Where the links in emails point (the API's public address).
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://localhost:8000").rstrip("/")

# Webhooks. Only https URLs resolving to public addresses, unless allowed (tests, a laptop).
WEBHOOK_ALLOW_HTTP = env.bool("WEBHOOK_ALLOW_HTTP", default=False)
WEBHOOK_ALLOW_PRIVATE = env.bool("WEBHOOK_ALLOW_PRIVATE", default=False)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10)
WEBHOOK_MAX_RESPONSE_BYTES = env.int("WEBHOOK_MAX_RESPONSE_BYTES", default=64 * 1024)
# Seconds before each retry (jittered), then the delivery fails for good.
WEBHOOK_RETRY_SECONDS = env.list(
    "WEBHOOK_RETRY_SECONDS", cast=int, default=[5, 300, 1800, 7200, 18000, 36000, 36000]
)
# An endpoint failing without a success for this long is disabled and its owner alerted.
WEBHOOK_DISABLE_AFTER = timedelta(hours=env.int("WEBHOOK_DISABLE_AFTER_HOURS", default=72))
WEBHOOK_SECRET_GRACE = timedelta(hours=env.int("WEBHOOK_SECRET_GRACE_HOURS", default=24))
WEBHOOK_MAX_ENDPOINTS_PER_OWNER = env.int("WEBHOOK_MAX_ENDPOINTS_PER_OWNER", default=20)
# How often beat runs the dispatcher (new events → deliveries) and the alerts scan.
WEBHOOK_DISPATCH_SECONDS = env.float("WEBHOOK_DISPATCH_SECONDS", default=2)
ALERTS_SCAN_SECONDS = env.float("ALERTS_SCAN_SECONDS", default=10)

# Finished deliveries (and their attempts) are kept this long; alert records likewise.
WEBHOOK_DELIVERY_RETENTION = timedelta(days=env.int("WEBHOOK_DELIVERY_RETENTION_DAYS", default=7))
ALERT_RECORD_RETENTION = timedelta(days=env.int("ALERT_RECORD_RETENTION_DAYS", default=30))

# Deliveries run on their own queue and worker (the Procfile's `webhooks`: a thread pool of
# WEBHOOK_CONCURRENCY), so a slow receiver never delays agent replies (system/notify/routing.py).
WEBHOOK_QUEUE = env.str("WEBHOOK_QUEUE", default="webhooks")
CELERY_TASK_ROUTES = ("system.notify.routing.route_task",)

NOTIFY_BEAT_SCHEDULE = {
    "webhooks-dispatch": {"task": "notify.webhooks_dispatch", "schedule": WEBHOOK_DISPATCH_SECONDS},
    "alerts-scan": {"task": "notify.alerts_scan", "schedule": ALERTS_SCAN_SECONDS},
    "notify-prune": {"task": "notify.prune", "schedule": timedelta(hours=1)},
}
