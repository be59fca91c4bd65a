"""A shared Redis client for the kernel's own keys (rate-limit counters, cache versions).

Short timeouts: these calls sit on the request path, and a Redis outage must degrade the
features that use them (fail open), not hang requests.

A breaker on top: once a call fails to reach Redis (refused, reset, or no answer within the
timeout), every call of this process fails at once with `redis.ConnectionError` for
REDIS_BREAKER_SECONDS (default 1 s), then one goes through again. Without it a request makes
several calls (rate limit, reply budget, cache versions, live publish, request counters) and,
when Redis stops answering without refusing (a network partition, a frozen server), waits out
the timeout in each: seconds per request, for as long as the outage lasts. Callers already
handle RedisError; they see the same error, only sooner.
"""

import threading
import time

import redis
from django.conf import settings
from redis.client import Pipeline

_clients: dict[str, redis.Redis] = {}
_lock = threading.Lock()
_UNREACHABLE = (redis.ConnectionError, redis.TimeoutError)


class _Breaker:
    def __init__(self) -> None:
        self.open_until = 0.0

    def check(self) -> None:
        if time.monotonic() < self.open_until:
            raise redis.ConnectionError("Redis unreachable (a call just failed); not retried yet")

    def trip(self) -> None:
        self.open_until = time.monotonic() + getattr(settings, "REDIS_BREAKER_SECONDS", 1.0)


class _BreakerPipeline(Pipeline):
    breaker: _Breaker

    def execute(self, raise_on_error: bool = True):
        if self.command_stack:
            try:
                self.breaker.check()
            except redis.ConnectionError:
                self.reset()
                raise
        try:
            return super().execute(raise_on_error)
        except _UNREACHABLE:
            self.breaker.trip()
            raise


class BreakerRedis(redis.Redis):
    """redis.Redis whose calls fail fast for a moment after one could not reach the server."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.breaker = _Breaker()

    def execute_command(self, *args, **options):
        self.breaker.check()
        try:
            return super().execute_command(*args, **options)
        except _UNREACHABLE:
            self.breaker.trip()
            raise

    def pipeline(self, transaction: bool = True, shard_hint=None) -> Pipeline:
        pipe = _BreakerPipeline(
            self.connection_pool, self.response_callbacks, transaction, shard_hint
        )
        pipe.breaker = self.breaker
        return pipe


def get_redis() -> redis.Redis:
    url = settings.REDIS_URL
    client = _clients.get(url)
    if client is None:
        with _lock:
            client = _clients.get(url) or BreakerRedis.from_url(
                url, socket_timeout=0.5, socket_connect_timeout=0.5, health_check_interval=30
            )
            _clients[url] = client
    return client
