"""System operations: status, probes, metrics, system tasks, backup, the dashboard.

Owns `/healthz`, `/readyz`, `/metrics`, `/api/v1/system/*`, the landing page, the admin
dashboard and SystemTask admin, and the Celery worker heartbeat (connected in this app's
config). It may import the kernel, the eventlog, auth and the product apps' selectors and
services (agents, sessions) for counts and reloads, and the agents' config serializer for the
default agent config it reports; no product app imports it.
"""
