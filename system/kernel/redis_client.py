"""A shared Redis client for the kernel's own keys (rate-limit counters, cache versions).

Short timeouts: these calls sit on the request path, and a Redis outage must degrade the
features that use them (fail open), not hang requests.
"""

import threading

import redis
from django.conf import settings

_clients: dict[str, redis.Redis] = {}
_lock = threading.Lock()


def get_redis() -> redis.Redis:
    url = settings.REDIS_URL
    client = _clients.get(url)
    if client is None:
        with _lock:
            client = _clients.get(url) or redis.Redis.from_url(
                url, socket_timeout=0.5, socket_connect_timeout=0.5, health_check_interval=30
            )
            _clients[url] = client
    return client
