"""The kernel: what every request and every room stands on.

Owns errors and the error envelope, request ids and the access log, the `Principal` (who is
calling, built the same way for REST and WebSocket), roles, the access policy, hot-reloaded
configuration files and the cluster-wide config version, rate limiting, idempotency, ETag
caching, deprecation headers, pagination, the API's one timestamp format (`timefmt`), the
OpenAPI hooks, the Redis client and the back office's read-only admin mixin. It may import
Django, DRF and the shared `system.models`; it imports no product app (agents, messaging,
sessions_app, questflow) and no other room of `system` (import-linter checks this in
`make lint`).
"""
