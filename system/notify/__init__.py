"""Notifications: signed webhooks for every event an endpoint's owner may see, and email alerts.

Owns the WebhookEndpoint, WebhookDelivery, WebhookAttempt, AlertSent, NotificationSettings and
LogCursor rows (models in `system.models`), `/api/v1/webhooks*`, `/api/v1/auth/me/notifications`,
their admin, and the Celery tasks that read the event log from a cursor (`notify.*`). The event
log is the source: a webhook or an alert is made from a committed entry, after commit, by a
worker. It may import the kernel, the eventlog, auth, and the product apps' selectors (for the
same visibility rules as REST and WebSocket); it imports neither realtime nor the dev server,
and no product app imports it. Ops reads its delivery health for the dashboard.
"""
